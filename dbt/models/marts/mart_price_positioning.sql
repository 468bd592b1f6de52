{#- Our shelf price (fact_sales) against the matched competitors' prices, per (tenant, product, day) where we
    have a price and at least one competitor does. A competitor is a retailer: with two matched listings at one
    retailer its cheaper price counts. gap_pct and index_vs_cheapest read like the pricing analytics'
    positioning (100 = the cheapest competitor's price, above 100 / a positive gap: we are dearer); price_rank is
    our place among us and the competitors, cheapest first (1 + the competitors strictly cheaper than us). -#}
{{ config(indexes=[{'columns': ['tenant_id', 'product_id', 'date_key'], 'unique': True}]) }}

with ours as (
    select s.tenant_id, s.product_id, s.date_key, s.ds, s.price as our_price
    from {{ ref('stg_sales') }} s
    where s.price > 0
),

competitors as (
    select h.tenant_id, m.product_id, h.date_key, h.retailer, min(h.price) as price
    from {{ ref('fct_price_history') }} h
    join {{ ref('int_listing_products') }} m on m.listing_id = h.listing_id and m.tenant_id = h.tenant_id
    where m.is_matched and h.price > 0
    group by h.tenant_id, m.product_id, h.date_key, h.retailer
),

compared as (
    select
        o.tenant_id,
        o.product_id,
        o.date_key,
        min(o.ds) as ds,
        min(o.our_price) as our_price,
        count(*) as n_competitors,
        min(c.price) as min_competitor_price,
        round(percentile_cont(0.5) within group (order by c.price)::numeric, 2) as median_competitor_price,
        max(c.price) as max_competitor_price,
        (array_agg(c.retailer order by c.price, c.retailer))[1] as cheapest_retailer,
        count(*) filter (where c.price < o.our_price) as n_cheaper
    from ours o
    join competitors c on c.tenant_id = o.tenant_id and c.product_id = o.product_id and c.date_key = o.date_key
    group by o.tenant_id, o.product_id, o.date_key
)

select
    c.tenant_id,
    c.product_id,
    p.sku,
    p.name,
    p.category,
    c.date_key,
    c.ds,
    c.our_price,
    c.n_competitors,
    c.cheapest_retailer,
    c.min_competitor_price,
    c.median_competitor_price,
    c.max_competitor_price,
    c.our_price - c.min_competitor_price as gap_to_cheapest,
    round((c.our_price / c.min_competitor_price - 1) * 100, 2) as gap_pct,
    round(100 * c.our_price / c.min_competitor_price, 2) as index_vs_cheapest,
    1 + c.n_cheaper as price_rank,
    case
        when c.our_price < c.min_competitor_price then 'cheapest'
        when c.our_price = c.min_competitor_price then 'tied'
        else 'dearer'
    end as position
from compared c
join {{ ref('stg_products') }} p on p.product_id = c.product_id and p.tenant_id = c.tenant_id
