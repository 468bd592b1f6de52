-- every listing with the product it currently matches (auto or confirmed) and the category it counts in: the
-- product's category when matched, else the category the text classifier gave the listing (migration 0011),
-- else '(none)'. Read by the marts at build time, so a match changed later re-files the whole history.
select
    l.tenant_id,
    l.listing_id,
    l.retailer_id,
    l.retailer,
    l.item_id,
    l.title,
    m.product_id,
    p.sku,
    p.name as product_name,
    coalesce(p.category, l.classified_category, '(none)') as category,
    case
        when p.product_id is not null then 'product'
        when l.classified_category is not null then 'classifier'
        else 'none'
    end as category_source,
    p.product_id is not null as is_matched
from {{ ref('stg_listings') }} l
left join {{ ref('stg_matches') }} m
    on m.listing_id = l.listing_id and m.tenant_id = l.tenant_id and m.is_matched
left join {{ ref('stg_products') }} p
    on p.product_id = m.product_id and p.tenant_id = m.tenant_id
