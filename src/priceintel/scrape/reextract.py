"""Extract again from the raw archive: the offers of every archived product page, without fetching anything.

When the extraction rules improve, the history they would have produced is recomputed from the pages kept in
`data/raw/` (or the object store): the same `_process` the crawl (`scrape_demo`, `scrape_shops`) ran on each
response, with the fetch's own provenance (URL, status, fetch time, content hash and the run's `ds`); a final
error response (status 400 and above) is the same `http_error` the fetcher reported. Pages are read and
extracted in chunks, in this process or as Dask tasks on a cluster (`priceintel.compute`), with the same result
either way; each worker reads the bodies from the archive itself, so only index records travel to the workers.

Which records count: index lines whose `meta.kind` is "product" with a status. Of a page fetched twice for the
same run day (a refetch after a robot check), the later fetch counts, as it did in the scrape; a 304 (not
modified) is extracted from the page's previous body, as the scrape did from its cache. Responses with no body
(timeouts, refused connections) were never archived, so they are not in the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from http import HTTPStatus
from typing import Any

import pandas as pd

from priceintel import compute
from priceintel.scrape.archive import RawArchive
from priceintel.scrape.crawl import _errors_frame, _offers_frame, _process
from priceintel.scrape.results import FetchResult, http_error_message

#: index records per Dask task (at least 4 tasks per worker thread)
CHUNK = 200


def product_records(
    archive: RawArchive, partitions: Iterable[str] | None = None, retailers: Iterable[str] | None = None
) -> list[dict]:
    """The archived product-page fetches of the crawls (index records) whose page was first fetched in one of
    `partitions` (default all): the last fetch of each (retailer, url, run day), in the order they were first
    fetched. A 304 (not modified) record gets the content hash of the body it confirmed (`not_modified_of`, or
    in older archives the page's latest earlier 200 with a validator), which the scrape extracted from its
    cache; one whose body is unknown is left out. Pages fetched one at a time (live watches, `preview`,
    discovery: `meta.page`) were not extracted by the crawl and are not included."""
    wanted = None if retailers is None else set(retailers)
    latest: dict[tuple, dict] = {}
    first_part: dict[tuple, str] = {}
    body_of: dict[str, str] = {}  # url -> sha256 of its latest archived 200 body with a validator (not rendered)
    for part in archive.partitions():  # every partition, in order: a 304 may point at an earlier day's body
        for rec in archive.iter_index(part):
            meta = rec.get("meta") or {}
            if meta.get("kind") != "product" or meta.get("page") or rec.get("status") is None:
                continue
            if not meta.get("retailer") or (wanted is not None and meta["retailer"] not in wanted):
                continue
            if rec["status"] == 304:
                sha = meta.get("not_modified_of") or body_of.get(rec["url"])
                if not sha:
                    continue
                rec = dict(rec, sha256=sha)
            elif rec["status"] == 200 and not meta.get("rendered"):
                headers = {k.lower() for k in rec.get("headers") or {}}
                if headers & {"etag", "last-modified"}:
                    body_of[rec["url"]] = rec["sha256"]
            key = (meta["retailer"], rec["url"], meta.get("ds") or part)
            first_part.setdefault(key, part)
            latest[key] = dict(rec, partition=part)  # a later fetch replaces an earlier one in place
    if partitions is not None:
        parts = set(partitions)
        return [rec for key, rec in latest.items() if first_part[key] in parts]
    return list(latest.values())


def _archive_spec(archive: RawArchive) -> tuple[str, str | None]:
    """What a worker needs to open the same archive: (root, object-store URL or None)."""
    return str(archive.root), archive.spool.store.url if archive.spool is not None else None


def _open(root: str, store_url: str | None) -> RawArchive:
    from priceintel import storage

    return RawArchive(root, store=storage.open_store(store_url) if store_url else "local")


def extract_chunk(
    records: list[tuple[int, dict]], root: str, store_url: str | None
) -> list[tuple[int, dict | None, dict | None]]:
    """Dask worker: `extract_records` on the archive at (root, store_url), opened here."""
    return extract_records(records, _open(root, store_url))


def extract_records(records: list[tuple[int, dict]], archive: RawArchive) -> list[tuple[int, dict | None, dict | None]]:
    """(position, offer row, error row) of each (position, record) in `records`, the body read from `archive`."""
    out = []
    for pos, rec in records:
        meta = rec.get("meta") or {}
        status = rec["status"]
        error = None
        if status >= 400:  # what the fetcher reported for a final error response (the standard reason phrase)
            phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else None
            error = http_error_message(status, phrase, rec["url"])
        res = FetchResult(
            url=rec["url"],
            status=status,
            headers=rec.get("headers") or {},
            body=archive.get(rec["sha256"]),
            fetched_at=datetime.fromisoformat(rec["fetched_at"]) if rec.get("fetched_at") else None,
            sha256=rec["sha256"],
            error_kind="http_error" if error else None,
            error=error,
        )
        row, err = _process(meta["retailer"], res)
        ds = meta.get("ds")
        out.append((pos, row if row is None else dict(row, ds=ds), err if err is None else dict(err, ds=ds)))
    return out


def reextract(
    archive: RawArchive,
    partitions: Iterable[str] | None = None,
    retailers: Iterable[str] | None = None,
    cluster: Any = None,
    chunk: int = CHUNK,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(offers, errors) extracted again from the archived product pages, in the archive's order, locally or on
    the Dask cluster `cluster` (address, cluster object or Client; default $PRICEINTEL_DASK_CLUSTER)."""
    records = list(enumerate(product_records(archive, partitions, retailers)))
    cluster = compute.resolve(cluster)
    results: list[tuple[int, dict | None, dict | None]] = []
    if cluster is None:  # here: the caller's archive as it is (its store client and spool)
        results = extract_records(records, archive)
    elif records:
        root, store_url = _archive_spec(archive)
        with compute.connect(cluster) as client:
            n = max(compute.slots(client) * 4, -(-len(records) // chunk))
            for part in compute.map_chunks(
                extract_chunk, compute.chunked(records, n), client, root=root, store_url=store_url
            ):
                results.extend(part)
    results.sort(key=lambda t: t[0])
    rows = [row for _, row, _ in results if row is not None]
    offers = _offers_frame(rows)
    offers["ds"] = pd.to_datetime(pd.Series([r["ds"] for r in rows], dtype=object)).astype("datetime64[ns]")
    errors = _errors_frame([err for _, _, err in results if err is not None], with_ds=True)
    return offers, errors
