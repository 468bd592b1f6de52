"""Watch list: import with rejects and warnings, add / list / remove, idempotency, on the real PostgreSQL."""

from __future__ import annotations

import pytest
from _ingest_helpers import rows

from priceintel.ingest.fields import clean_url
from priceintel.ingest.result import IngestError
from priceintel.ingest.watch import add_watch, import_watches, list_watches, remove_watch

SHOPS = {"walmart", "target"}


def _watches(engine) -> list[tuple]:
    return rows(engine, "SELECT retailer, url, sku, active, status, import_run_id FROM watch ORDER BY url")


@pytest.mark.parametrize(
    "bad", ["walmart.com/ip/1", "ftp://x.com/a", "https:///nohost", "http://x .com/a", "http://localhost/a"]
)
def test_malformed_urls(bad):
    assert clean_url(bad) is None


def test_import_watches_rejects_and_warnings(catalog, write, tmp_path):
    text = (
        "retailer,url,sku\n"
        "walmart,https://www.walmart.com/ip/1,A1\n"  # 2 ok
        ",https://www.target.com/p/2,A2\n"  # 3 ok, retailer from the host
        "acme,https://acme.example.com/p/3,\n"  # 4 ok, retailer not in shops.yaml
        "walmart,walmart.com/ip/4,A1\n"  # 5 malformed URL
        "walmart,https://www.walmart.com/ip/5,ZZ9\n"  # 6 unknown sku
        "walmart,https://www.walmart.com/ip/6,A1\n"  # 7 duplicate
        "walmart,https://WWW.walmart.com/ip/6,A2\n"  # 8 duplicate (same URL, host case differs)
    )
    res = import_watches(catalog, write("watch.csv", text), known_retailers=SHOPS, archive_root=tmp_path)
    counts = {"total": 7, "inserted": 3, "updated": 0, "unchanged": 0, "rejected": 4}
    assert (res.status, res.counts) == ("partial", counts)
    assert res.lines()[1:] == [
        "watch.csv row 4, column retailer: retailer 'acme' is not in shops.yaml: it will be fetched with the "
        "generic adapter and default politeness",
        "watch.csv row 5, column url: malformed URL 'walmart.com/ip/4' (need an absolute http(s) URL)",
        "watch.csv row 6, column sku: unknown sku 'ZZ9' (not in the catalogue)",
        "watch.csv row 7, column url: duplicate URL 'https://www.walmart.com/ip/6' (rows 7, 8): every copy rejected",
        "watch.csv row 8, column url: duplicate URL 'https://www.walmart.com/ip/6' (rows 7, 8): every copy rejected",
    ]
    run = res.import_run_id
    assert _watches(catalog) == [
        ("acme", "https://acme.example.com/p/3", None, True, "new", run),
        ("target", "https://www.target.com/p/2", "A2", True, "new", run),
        ("walmart", "https://www.walmart.com/ip/1", "A1", True, "new", run),
    ]
    assert res.rejects_path.read_text().splitlines()[1] == (
        "5,url,walmart.com/ip/4,malformed URL 'walmart.com/ip/4' (need an absolute http(s) URL)"
    )


def test_watch_reimport_is_idempotent_and_reactivates(catalog, write, tmp_path):
    path = write("watch.csv", "url,sku\nhttps://www.walmart.com/ip/1,A1\nhttps://www.target.com/p/2,\n")
    first = import_watches(catalog, path, archive_root=tmp_path)
    assert first.counts["inserted"] == 2 and not first.warnings  # no shops list: no retailer warning
    again = import_watches(catalog, path, archive_root=tmp_path)
    assert again.counts == {"total": 2, "inserted": 0, "updated": 0, "unchanged": 2, "rejected": 0}
    remove_watch(catalog, "https://www.target.com/p/2")
    path.write_text(path.read_text().replace("ip/1,A1", "ip/1,A2"))
    third = import_watches(catalog, path, archive_root=tmp_path)
    assert (third.counts["updated"], third.counts["unchanged"]) == (2, 0)  # sku changed; removed watch back
    assert [w[2:4] for w in _watches(catalog)] == [(None, True), ("A2", True)]


def test_strict_watch_import_writes_nothing(catalog, write, tmp_path):
    path = write("watch.csv", "url\nhttps://www.walmart.com/ip/1\nnot a url\n")
    with pytest.raises(
        IngestError,
        match=r"^watch.csv: refused \(strict\): 1 row\(s\) rejected, nothing imported; "
        r"row 3, column url: malformed URL 'not a url'",
    ):
        import_watches(catalog, path, strict=True, archive_root=tmp_path)
    assert _watches(catalog) == []


def test_watch_file_needs_a_url_column(catalog, write, tmp_path):
    with pytest.raises(IngestError) as err:
        import_watches(catalog, write("watch.csv", "retailer,sku\nwalmart,A1\n"), archive_root=tmp_path)
    assert str(err.value) == "watch.csv: no url column (url or link); its columns: ['retailer', 'sku']"


def test_add_list_remove_purge(catalog):
    res = add_watch(catalog, "https://www.walmart.com/ip/9", sku="A1", known_retailers=SHOPS)
    assert res == {
        "watch_id": 1,
        "url": "https://www.walmart.com/ip/9",
        "retailer": "walmart",
        "sku": "A1",
        "action": "added",
        "warnings": [],
    }
    assert add_watch(catalog, "https://www.walmart.com/ip/9", sku="A1")["action"] == "unchanged"
    other = add_watch(catalog, "https://shop.example.co.uk/p/1", known_retailers=SHOPS)
    assert other["retailer"] == "example" and other["warnings"] == [
        "retailer 'example' is not in shops.yaml: it will be fetched with the generic adapter and default politeness"
    ]
    listed = list_watches(catalog)
    assert listed[["watch_id", "retailer", "sku", "active", "status"]].values.tolist() == [
        [2, "example", None, True, "new"],
        [1, "walmart", "A1", True, "new"],
    ]
    assert remove_watch(catalog, "1") == 1
    assert remove_watch(catalog, "https://www.walmart.com/ip/9") == 0  # already removed
    assert list_watches(catalog)["watch_id"].tolist() == [2]
    assert list_watches(catalog, include_inactive=True)["watch_id"].tolist() == [2, 1]
    assert remove_watch(catalog, "https://shop.example.co.uk/p/1", purge=True) == 1
    assert list_watches(catalog, include_inactive=True)["watch_id"].tolist() == [1]


def test_unconfigured_retailer_warning_names_the_adapter_a_run_uses(catalog):
    from priceintel.scrape.shops import shop_for

    site = add_watch(catalog, "https://www.walmart.com/ip/77", retailer="walmart-outlet", known_retailers=SHOPS)
    shop, _ = shop_for({}, "https://www.walmart.com/ip/77", retailer="walmart-outlet")
    assert shop.adapter == "walmart" and site["warnings"] == [
        "retailer 'walmart-outlet' is not in shops.yaml: it will be fetched with the walmart adapter and default "
        "politeness"
    ]


def test_add_watch_errors_are_clear(catalog):
    with pytest.raises(
        IngestError, match=r"^malformed URL 'walmart.com/x': need an absolute http\(s\) URL with a host$"
    ):
        add_watch(catalog, "walmart.com/x")
    with pytest.raises(IngestError, match=r"^unknown sku 'ZZ9': it is not in the catalogue"):
        add_watch(catalog, "https://www.walmart.com/ip/1", sku="ZZ9")
    with pytest.raises(IngestError, match=r"^no watch with id or url '42'"):
        remove_watch(catalog, 42)
    assert _watches(catalog) == []
