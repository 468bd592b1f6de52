"""The replay web serves the real saved pages on loopback under their original paths, by id and as an HTTP proxy."""

from __future__ import annotations

import csv
import gzip
import socket

import pytest
import requests

from priceintel import config
from priceintel.demo.replay import ReplayError, ReplayWeb, serve_pages

PAGES = config.shared_data_dir() / "pages"
needs_pages = pytest.mark.skipif(not (PAGES / "truth.csv").is_file(), reason=f"no saved pages at {PAGES}")


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


@needs_pages
def test_serves_every_shared_page_byte_for_byte():
    with open(PAGES / "truth.csv", newline="", encoding="utf-8") as fh:
        rows = {r["page_id"]: r for r in csv.DictReader(fh)}
    s = _session()
    with serve_pages(PAGES) as (base, index):
        assert base.startswith("http://127.0.0.1:") and set(index) == set(rows)
        robots = s.get(base + "/robots.txt")
        assert robots.status_code == 200 and robots.headers["Content-Type"].startswith("text/plain")
        assert "Allow: /" in robots.text and "Disallow" not in robots.text
        for pid, page in index.items():
            assert page.url == rows[pid]["url"] and page.truth["price_all"] == rows[pid]["price_all"]
            want = gzip.decompress((PAGES / rows[pid]["file"]).read_bytes())
            got = s.get(page.local_url)
            assert got.status_code == 200 and got.content == want, page.local_url
            assert got.headers["Content-Type"].startswith("text/html")
            assert s.get(page.id_url).content == want
        listing = s.get(base + "/")
        assert listing.status_code == 200 and listing.text.count("<li>") == len(rows)


@needs_pages
def test_local_urls_keep_the_original_path_and_query():
    with serve_pages(PAGES) as (base, index):
        by_url = {p.url: p for p in index.values()}
        amazon = by_url["https://www.amazon.co.uk/dp/B076TQK2D6"]
        assert amazon.local_url == base + "/amazon.co.uk/dp/B076TQK2D6"
        otto = next(p for u, p in by_url.items() if "otto.de/p/kaercher" in u)
        assert otto.local_url == base + "/otto.de/p/kaercher-hochdruckreiniger-k-3-full-control-848068924/"  # no #frag
        argos = by_url["https://www.argos.co.uk/product/4667999"]
        assert argos.proxy_url == "http://www.argos.co.uk/product/4667999"
        jumbo = next(p for u, p in by_url.items() if "jumbo.ch" in u)
        assert jumbo.local_url.endswith("/jumbo.ch/de/servietten-bunte-eier-28110?sku=1357247")
        s = _session()
        mobly = next(p for u, p in by_url.items() if "mobly.com.br" in u)  # its '#a=3|p=14' fragment is dropped
        assert "#" not in mobly.local_url and s.get(mobly.local_url).status_code == 200
        assert s.get(base + "/amazon.co.uk/dp/B000000000").status_code == 404
        assert s.get(base + "/pages/nope.html").status_code == 404
        head = s.head(amazon.local_url)
        assert head.status_code == 200 and int(head.headers["Content-Length"]) > 1000 and not head.content


@needs_pages
def test_answers_as_a_proxy_for_the_original_hosts():
    with serve_pages(PAGES) as (base, index):
        s = _session()
        page = next(p for p in index.values() if "amazon.de" in p.url)
        via_proxy = s.get(page.proxy_url, proxies={"http": base})
        assert via_proxy.status_code == 200 and via_proxy.content == s.get(page.local_url).content
        robots = s.get("http://www.amazon.de/robots.txt", proxies={"http": base})
        assert robots.status_code == 200 and "Allow: /" in robots.text
        assert s.get("http://www.amazon.de/dp/NOPE", proxies={"http": base}).status_code == 404


def _pages_dir(tmp_path, rows, files=True):
    (tmp_path / "html").mkdir(exist_ok=True)
    with open(tmp_path / "truth.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "page_id", "url", "price_all"])
        w.writeheader()
        for pid, url in rows:
            w.writerow({"file": f"html/{pid}.html.gz", "page_id": pid, "url": url, "price_all": "1.00"})
            if files:
                body = f"<html><body>{pid} é</body></html>".encode("latin-1" if pid == "latin" else "utf-8")
                (tmp_path / "html" / f"{pid}.html.gz").write_bytes(gzip.compress(body))
    return tmp_path


def test_colliding_paths_and_charsets(tmp_path):
    d = _pages_dir(tmp_path, [("a", "https://www.shop.example/p/1"), ("b", "http://shop.example/p/1#x"),
                              ("latin", "https://other.example/"), ("q", "https://q.example/s?a=1|2")])
    with ReplayWeb(d) as web:
        idx = web.index
        assert idx["a"].local_url == web.base_url + "/shop.example/p/1"
        assert idx["b"].local_url == web.base_url + "/pages/b.html"  # same local path: served by id instead
        assert idx["latin"].local_url == web.base_url + "/other.example/"
        s = _session()
        assert s.get(idx["a"].local_url).content == "<html><body>a é</body></html>".encode()
        assert s.get(idx["b"].local_url).content.startswith(b"<html><body>b")
        assert s.get(idx["a"].local_url).headers["Content-Type"] == "text/html; charset=utf-8"
        assert s.get(idx["latin"].local_url).headers["Content-Type"] == "text/html"  # not UTF-8: no charset claimed
        # clients quote the same query differently: '|' and '%7C' find the same page
        assert s.get(web.base_url + "/q.example/s?a=1%7C2").status_code == 200
        assert s.get(web.base_url + "/q.example/s?a=1|2").status_code == 200
        assert s.get(web.base_url + "/q.example/s").status_code == 200  # only one page has this path
        port = int(web.base_url.rsplit(":", 1)[1])
    with socket.socket() as sock:  # the port is released on stop
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_bad_pages_folders(tmp_path):
    with pytest.raises(ReplayError, match="pages folder not found"):
        ReplayWeb(tmp_path / "nope")
    with pytest.raises(ReplayError, match="truth file .* not found"):
        ReplayWeb(tmp_path)
    (tmp_path / "truth.csv").write_text("page_id,url\nx,https://a.example/\n")
    with pytest.raises(ReplayError, match=r"column\(s\) \['file'\] missing"):
        ReplayWeb(tmp_path)
    d = _pages_dir(tmp_path, [("x", "https://a.example/p")], files=False)
    with pytest.raises(ReplayError, match="page x has no HTML file at"):
        ReplayWeb(d)
    d = _pages_dir(tmp_path, [("x", "a.example/p")])
    with pytest.raises(ReplayError, match="an http\\(s\\) url are required"):
        ReplayWeb(d)
