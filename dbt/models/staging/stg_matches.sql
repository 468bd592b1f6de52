-- listing -> our product; only auto and confirmed count as a match (priceintel.items.MATCHED_STATUSES)
select
    tenant_id,
    listing_id,
    product_id,
    status,
    method,
    score,
    status in ('auto', 'confirmed') as is_matched
from {{ source('priceintel', 'product_match') }}
