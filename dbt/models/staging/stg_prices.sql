-- competitor price observations: one per listing and day (price NULL when the page showed none)
select
    fp.tenant_id,
    fp.listing_id,
    fp.date_key,
    d.date as ds,
    fp.observed_at,
    fp.price,
    fp.list_price,
    fp.currency::text as currency,
    fp.in_stock,
    fp.promo,
    fp.scrape_run_id,
    fp.page_sha256,
    fp.extraction_method
from {{ source('priceintel', 'fact_price') }} fp
join {{ source('priceintel', 'dim_date') }} d on d.date_key = fp.date_key
