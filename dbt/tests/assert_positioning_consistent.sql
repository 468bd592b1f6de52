-- Positioning agrees with itself: the cheapest competitor is no dearer than the median and the dearest, our rank
-- lies between 1 and the number of sellers, and `position` says what the gap says.
select tenant_id, product_id, date_key
from {{ ref('mart_price_positioning') }}
where min_competitor_price > median_competitor_price
   or median_competitor_price > max_competitor_price
   or price_rank < 1 or price_rank > n_competitors + 1
   or (position = 'cheapest') <> (gap_to_cheapest < 0)
   or (position = 'tied') <> (gap_to_cheapest = 0)
