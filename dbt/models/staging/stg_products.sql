-- our catalogue; a product without a category is in '(none)', as in the apps
select
    tenant_id,
    product_id,
    sku,
    name,
    brand,
    coalesce(category, '(none)') as category,
    gtin,
    unit_cost,
    map_price,
    msrp
from {{ source('priceintel', 'dim_product') }}
