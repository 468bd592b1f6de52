-- one retailer product page, with its retailer's key: dim_listing + dim_retailer
select
    l.tenant_id,
    l.listing_id,
    l.retailer_id,
    r.retailer,
    l.item_id,
    l.url,
    l.title,
    l.brand,
    l.gtin,
    l.category as classified_category,
    l.category_confidence,
    l.first_seen,
    l.last_seen
from {{ source('priceintel', 'dim_listing') }} l
join {{ source('priceintel', 'dim_retailer') }} r
    on r.retailer_id = l.retailer_id and r.tenant_id = l.tenant_id
