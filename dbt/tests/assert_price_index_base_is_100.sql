-- On its base day every group's price index is 100: each listing's price relative is 1 there.
select tenant_id, category, retailer, date_key, price_index
from {{ ref('mart_price_index') }}
where date_key = base_date_key and abs(price_index - 100) > 0.0001
