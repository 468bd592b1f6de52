{#- Every competitor price observation with its retailer, one row per (tenant, listing, day): the facts that do
    not change once observed. Incremental on date_key: a build re-reads each tenant's last `lookback_days` days
    and the days after them (delete+insert on the key), so re-loaded recent days are replaced. Which product a
    listing is and its category can change later (a match reviewed), so they are joined in the marts at build
    time (int_listing_products), not frozen here. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'listing_id', 'date_key'],
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['tenant_id', 'listing_id', 'date_key'], 'unique': True},
            {'columns': ['tenant_id', 'date_key']},
        ],
    )
}}

with prices as (
    select p.*
    from {{ ref('stg_prices') }} p
    {% if is_incremental() %}
    left join (
        select tenant_id, max(ds) - {{ var('lookback_days', 3) | int }} as since
        from {{ this }}
        group by tenant_id
    ) w on w.tenant_id = p.tenant_id
    where w.since is null or p.ds >= w.since
    {% endif %}
)

select
    p.tenant_id,
    p.listing_id || '-' || p.date_key as price_id,
    p.listing_id,
    p.date_key,
    p.ds,
    l.retailer,
    l.item_id,
    p.price,
    p.list_price,
    p.currency,
    p.in_stock,
    p.promo,
    case
        when p.list_price > 0 and p.price is not null and p.price < p.list_price
            then round((1 - p.price / p.list_price) * 100, 2)
    end as discount_pct,
    p.observed_at,
    p.scrape_run_id,
    p.extraction_method
from prices p
join {{ ref('stg_listings') }} l on l.listing_id = p.listing_id and l.tenant_id = p.tenant_id
