{#- Competitor promotion episodes: runs of consecutive calendar days on which a listing was on promotion (a day
    not observed, or observed without promotion, ends a run). The regular price is the listing's last priced
    observation without promotion before the episode, else the highest list price shown during it; depth is the
    deepest cut below it in percent. `ongoing`: the episode lasts to the listing's newest observation. -#}
{{ config(indexes=[{'columns': ['tenant_id', 'listing_id', 'start_ds'], 'unique': True}]) }}

with obs as (
    select tenant_id, listing_id, retailer, item_id, ds, price, list_price, promo
    from {{ ref('fct_price_history') }}
),

promo_days as (
    select
        o.*,
        o.ds - (row_number() over (partition by o.tenant_id, o.listing_id order by o.ds))::integer as run
    from obs o
    where o.promo
),

episodes as (
    select
        tenant_id,
        listing_id,
        min(retailer) as retailer,
        min(item_id) as item_id,
        min(ds) as start_ds,
        max(ds) as end_ds,
        count(*) as days,
        count(price) as priced_days,
        min(price) as min_promo_price,
        round(avg(price), 2) as avg_promo_price,
        max(list_price) as max_list_price
    from promo_days
    group by tenant_id, listing_id, run
),

last_seen as (
    select tenant_id, listing_id, max(ds) as last_ds from obs group by tenant_id, listing_id
),

priced as (
    select
        e.*,
        before.price as price_before,
        coalesce(before.price, e.max_list_price) as regular_price,
        case
            when before.price is not null then 'before'
            when e.max_list_price is not null then 'list_price'
        end as regular_source,
        e.end_ds = s.last_ds as ongoing
    from episodes e
    join last_seen s on s.tenant_id = e.tenant_id and s.listing_id = e.listing_id
    left join lateral (
        select o.price
        from obs o
        where o.tenant_id = e.tenant_id and o.listing_id = e.listing_id and o.ds < e.start_ds
            and o.promo is not true and o.price is not null
        order by o.ds desc
        limit 1
    ) before on true
)

select
    p.tenant_id,
    p.listing_id || '-' || to_char(p.start_ds, 'YYYYMMDD') as episode_id,
    p.listing_id,
    p.retailer,
    p.item_id,
    m.product_id,
    m.sku,
    m.category,
    p.start_ds,
    p.end_ds,
    p.days,
    p.priced_days,
    p.ongoing,
    p.regular_price,
    p.regular_source,
    p.min_promo_price,
    p.avg_promo_price,
    case
        when p.regular_price > 0 and p.min_promo_price is not null
            then round((1 - p.min_promo_price / p.regular_price) * 100, 2)
    end as depth_pct
from priced p
join {{ ref('int_listing_products') }} m on m.listing_id = p.listing_id and m.tenant_id = p.tenant_id
