{#- Price index per (tenant, category, retailer, day) against a base day: the geometric mean of the price
    relatives price(day) / price(base day) of the listings priced on both days (a Jevons index, the elementary
    index of consumer price statistics), times 100. The base day is var('price_index_base_date') when set, else
    each group's first priced day, where the index is 100 by construction (the data test
    assert_price_index_base_is_100). Categories as in int_listing_products (matched or classified listings). -#}
{{ config(indexes=[{'columns': ['tenant_id', 'category', 'retailer', 'date_key'], 'unique': True}]) }}

{%- set base_date = var('price_index_base_date', none) %}

with priced as (
    select h.tenant_id, m.category, h.retailer, h.listing_id, h.date_key, h.ds, h.price
    from {{ ref('fct_price_history') }} h
    join {{ ref('int_listing_products') }} m on m.listing_id = h.listing_id and m.tenant_id = h.tenant_id
    where h.price > 0
),

base_day as (
    {%- if base_date %}
    select distinct tenant_id, category, retailer,
        to_char(date {{ "'" ~ base_date ~ "'" }}, 'YYYYMMDD')::integer as base_date_key
    from priced
    {%- else %}
    select tenant_id, category, retailer, min(date_key) as base_date_key
    from priced
    group by tenant_id, category, retailer
    {%- endif %}
),

base as (
    select p.tenant_id, p.category, p.retailer, p.listing_id, p.price as base_price, b.base_date_key
    from priced p
    join base_day b
        on b.tenant_id = p.tenant_id and b.category = p.category and b.retailer = p.retailer
        and b.base_date_key = p.date_key
)

select
    p.tenant_id,
    p.category,
    p.retailer,
    p.date_key,
    p.ds,
    b.base_date_key,
    count(*) as n_listings,
    round(100 * exp(avg(ln(p.price / b.base_price))), 4)::double precision as price_index,
    round(avg(p.price), 2) as mean_price,
    round(avg(b.base_price), 2) as mean_base_price
from priced p
join base b
    on b.tenant_id = p.tenant_id and b.category = p.category and b.retailer = p.retailer
    and b.listing_id = p.listing_id
group by p.tenant_id, p.category, p.retailer, p.date_key, p.ds, b.base_date_key
