-- Prices are never negative: competitor prices and list prices as stored, and our own shelf prices. The star
-- schema's CHECK constraints say the same; this test holds the marts to it whatever loaded the tables.
select 'fact_price' as source, listing_id as id, date_key, price, list_price
from {{ ref('stg_prices') }}
where price < 0 or list_price < 0
union all
select 'fact_sales', product_id, date_key, price, null
from {{ ref('stg_sales') }}
where price < 0
