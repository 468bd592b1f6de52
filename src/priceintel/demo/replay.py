"""Replay web: the real saved product pages of a pages folder, served over HTTP on 127.0.0.1.

A pages folder (e.g. `../shared/data/pages`) holds `html/<page_id>.html.gz` and a `truth.csv` with at
least the columns `file`, `page_id` and `url` (the page's original URL). `serve_pages(directory)` starts a
`ThreadingHTTPServer` in a thread and yields `(base_url, index)`; `index[page_id]` is a `ReplayPage` with
the local URL, the original URL and the truth row.

Each page is served under a path that keeps its original path and query, prefixed by its original host
without `www.`: `https://www.amazon.co.uk/dp/B076TQK2D6` -> `<base_url>/amazon.co.uk/dp/B076TQK2D6`, so
adapters that read the URL shape (`/dp/<ASIN>`, `/ip/<id>`) still work. Every page is also at
`/pages/<page_id>.html`. `/robots.txt` allows everything; `/` lists the pages; anything else is a 404.

The server also answers as a plain HTTP forward proxy for the original hosts: with
`proxies={"http": base_url}`, a GET of `http://www.amazon.co.uk/dp/B076TQK2D6` (the original URL with
`http`) returns that page (`ReplayPage.proxy_url`), so a client sees the page under its real host name.

This module is standalone (stdlib only): `demo` may not import `scrape`.
"""

from __future__ import annotations

import gzip
import html
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from priceintel import PriceIntelError
from priceintel.demo.loopback import LoopbackServer, QuietHandler
from priceintel.items import read_csv_rows

__all__ = ["ReplayError", "ReplayPage", "ReplayWeb", "serve_pages"]

ROBOTS_TXT = b"User-agent: *\nAllow: /\n"
_REQUIRED = ("file", "page_id", "url")


class ReplayError(PriceIntelError):
    """A pages folder or its truth.csv is missing or malformed, or the replay server cannot start."""


@dataclass(frozen=True)
class ReplayPage:
    """One served page: where it is now, where it came from, and its annotated truth."""

    page_id: str
    url: str  #: original URL (truth.csv)
    path: str  #: local path (+ query) under the server's base URL
    file: Path  #: the gzip HTML file
    truth: dict = field(default_factory=dict)  #: the truth.csv row as strings
    base_url: str = ""

    @property
    def local_url(self) -> str:
        """The page's URL on the replay server (original path kept)."""
        return self.base_url + self.path

    @property
    def id_url(self) -> str:
        """The page's URL by id: `<base_url>/pages/<page_id>.html`."""
        return f"{self.base_url}/pages/{self.page_id}.html"

    @property
    def proxy_url(self) -> str:
        """The original URL with `http` (fragment dropped): fetch it with the server as HTTP proxy."""
        p = urlsplit(self.url)
        return f"http://{p.netloc}{p.path or '/'}" + (f"?{p.query}" if p.query else "")


def _key(path: str, query: str) -> tuple[str, str]:
    """Lookup key of a request: path and query percent-decoded (clients quote `|`, spaces … differently)."""
    return unquote(path or "/"), unquote(query)


def _local_path(url: str) -> tuple[str, str]:
    """(local path with query, host) for an original URL: `/<host without www.><path>?<query>`."""
    p = urlsplit(url)
    host = (p.hostname or "unknown").lower().removeprefix("www.")
    path = p.path if p.path.startswith("/") else "/" + p.path
    return f"/{host}{path}" + (f"?{p.query}" if p.query else ""), host


def _read_truth(directory: Path) -> list[dict]:
    """Rows of DIR/truth.csv (each with file, page_id, url)."""
    if not directory.is_dir():
        raise ReplayError(f"pages folder not found: {directory}")
    truth = directory / "truth.csv"
    rows = read_csv_rows(truth, _REQUIRED, ReplayError, "truth file (a pages folder has truth.csv and html/)")
    for i, row in enumerate(rows, 2):
        if not row["page_id"] or not row["url"].startswith(("http://", "https://")):
            raise ReplayError(f"{truth}:{i}: page_id and an http(s) url are required (got {row['url']!r})")
    return rows


def _index(directory: Path) -> dict[str, ReplayPage]:
    """page_id -> ReplayPage (local paths unique; a clash falls back to /pages/<page_id>.html)."""
    pages: dict[str, ReplayPage] = {}
    taken: set[tuple[str, str]] = set()
    for row in _read_truth(directory):
        pid = row["page_id"]
        file = directory / row["file"] if row.get("file") else directory / "html" / f"{pid}.html.gz"
        if not file.is_file():
            raise ReplayError(f"{directory / 'truth.csv'}: page {pid} has no HTML file at {file}")
        if pid in pages:
            raise ReplayError(f"{directory / 'truth.csv'}: page id {pid} is listed twice")
        path, _host = _local_path(row["url"])
        parts = urlsplit(path)
        key = _key(parts.path, parts.query)
        if key in taken:
            path = f"/pages/{pid}.html"
        taken.add(_key(*urlsplit(path)[2:4]))
        pages[pid] = ReplayPage(page_id=pid, url=row["url"], path=path, file=file, truth=dict(row))
    return pages


class _Server(LoopbackServer):
    """The replay server: the page table and the open connections (closed on stop)."""

    def __init__(self, addr: tuple[str, int], web: ReplayWeb) -> None:
        super().__init__(addr, _Handler)
        self.web = web


class _Handler(QuietHandler):
    """GET/HEAD of robots.txt, the page list, and the pages (by local path, id or proxied original URL)."""

    server_version = "ReplayWeb/1.0"
    server: _Server

    def _send(self, status: int, body: bytes, ctype: str, head: bool) -> None:
        """A complete response with Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_GET(self) -> None:
        """Serve a GET."""
        self._route(head=False)

    def do_HEAD(self) -> None:
        """Serve a HEAD (headers of the GET)."""
        self._route(head=True)

    def _route(self, head: bool) -> None:
        """Dispatch on the (possibly absolute, when proxied) request target."""
        web = self.server.web
        target = urlsplit(self.path)
        proxied = bool(target.scheme and target.netloc)
        if target.path == "/robots.txt":
            self._send(200, ROBOTS_TXT, "text/plain; charset=utf-8", head)
            return
        page = web.find_proxied(self.path) if proxied else web.find(target.path, target.query)
        if page is not None:
            body = web.body(page)
            self._send(200, body, _content_type(body), head)
        elif not proxied and target.path in ("", "/"):
            self._send(200, web.listing().encode("utf-8"), "text/html; charset=utf-8", head)
        else:
            msg = "<!doctype html><html><head><title>Page not found</title></head><body><h1>Page not found</h1>"
            msg += f"<p>{html.escape(self.path)} is not a saved page.</p></body></html>"
            self._send(404, msg.encode("utf-8"), "text/html; charset=utf-8", head)


def _content_type(body: bytes) -> str:
    """text/html, with charset=utf-8 only when the body really is UTF-8."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "text/html"
    return "text/html; charset=utf-8"


class ReplayWeb:
    """The saved pages of a pages folder on a loopback server (see the module docstring)."""

    def __init__(self, directory: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = Path(directory)
        self.host, self.port = host, int(port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self._tables(_index(self.directory))

    def _tables(self, pages: dict[str, ReplayPage]) -> None:
        """The page table and its lookups (by local path + query, by path, by original URL)."""
        self._pages = pages
        self._by_key = {_key(*urlsplit(p.path)[2:4]): p for p in pages.values()}
        self._by_path: dict[str, list[ReplayPage]] = {}
        for p in pages.values():
            self._by_path.setdefault(unquote(urlsplit(p.path).path), []).append(p)
        self._by_proxy = {self._proxy_key(p.proxy_url): p for p in pages.values()}

    @staticmethod
    def _proxy_key(url: str) -> tuple[str, str, str]:
        """(host, path, query) of an absolute URL, percent-decoded."""
        p = urlsplit(url)
        return ((p.netloc or "").lower(), *_key(p.path, p.query))

    @property
    def index(self) -> dict[str, ReplayPage]:
        """page_id -> ReplayPage (local URLs filled in once started)."""
        return dict(self._pages)

    def find(self, path: str, query: str = "") -> ReplayPage | None:
        """The page at a local path (+ query); by path alone when only one page has it; /pages/<id>.html."""
        page = self._by_key.get(_key(path, query))
        if page is not None:
            return page
        if path.startswith("/pages/") and path.endswith(".html"):
            return self._pages.get(path[len("/pages/") : -len(".html")])
        same = self._by_path.get(unquote(path), [])
        return same[0] if len(same) == 1 else None

    def find_proxied(self, url: str) -> ReplayPage | None:
        """The page whose original URL (http, no fragment) is `url`."""
        return self._by_proxy.get(self._proxy_key(url))

    def body(self, page: ReplayPage) -> bytes:
        """The page's HTML bytes (decompressed from its gzip file)."""
        try:
            return gzip.decompress(page.file.read_bytes())
        except OSError as exc:
            raise ReplayError(f"{page.file} is not a gzip file: {exc}") from None

    def listing(self) -> str:
        """An HTML list of links to every page."""
        items = "".join(
            f'<li><a href="{html.escape(p.path)}">{html.escape(p.url)}</a></li>' for p in self._pages.values()
        )
        return f"<!doctype html><html><head><title>Replay web</title></head><body><ul>{items}</ul></body></html>"

    def start(self) -> tuple[str, dict[str, ReplayPage]]:
        """Bind and serve in a daemon thread; (base_url, index with local URLs)."""
        if self._server is None:
            try:
                self._server = _Server((self.host, self.port), self)
            except OSError as exc:
                raise ReplayError(f"cannot start the replay web on {self.host}:{self.port}: {exc}") from exc
            self.base_url = f"http://{self.host}:{self._server.server_address[1]}"
            self._tables({k: _with_base(p, self.base_url) for k, p in self._pages.items()})
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="replay-web", daemon=True
            )
            self._thread.start()
        return self.base_url, self.index

    def stop(self) -> None:
        """Stop serving, close keep-alive connections, release the port."""
        srv, self._server = self._server, None
        if srv is None:
            return
        srv.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ReplayWeb:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _with_base(page: ReplayPage, base_url: str) -> ReplayPage:
    """The page record with the server's base URL."""
    return ReplayPage(page.page_id, page.url, page.path, page.file, page.truth, base_url)


@contextmanager
def serve_pages(
    directory: str | Path, host: str = "127.0.0.1", port: int = 0
) -> Iterator[tuple[str, dict[str, ReplayPage]]]:
    """Serve a pages folder on loopback for the duration of the block: yields (base_url, page_id -> ReplayPage)."""
    web = ReplayWeb(directory, host=host, port=port)
    try:
        yield web.start()
    finally:
        web.stop()
