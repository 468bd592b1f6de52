-- A listing's promotion episodes are disjoint and each spans exactly its days (consecutive calendar days).
select a.tenant_id, a.listing_id, a.start_ds
from {{ ref('mart_promotions') }} a
join {{ ref('mart_promotions') }} b
    on b.tenant_id = a.tenant_id and b.listing_id = a.listing_id and b.episode_id <> a.episode_id
    and b.start_ds <= a.end_ds and a.start_ds <= b.end_ds
union all
select tenant_id, listing_id, start_ds
from {{ ref('mart_promotions') }}
where end_ds - start_ds + 1 <> days
