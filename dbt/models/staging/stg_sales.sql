-- our own daily sales and shelf price per product
select
    fs.tenant_id, fs.product_id, fs.date_key, d.date as ds,
    fs.units, fs.revenue, fs.price, fs.promo
from {{ source('priceintel', 'fact_sales') }} fs
join {{ source('priceintel', 'dim_date') }} d on d.date_key = fs.date_key
