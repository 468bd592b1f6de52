"""The raw archive on object storage (`priceintel.storage`, `scrape.archive`), against a real moto S3 server on
loopback: writes, reads and replay through S3 with the local layout's keys; an outage in the middle of a fetch
batch (the server stopped: refused connections) is retried, recorded and spooled, the batch completes, and the
spool uploads when the server is back; throttling (503 SlowDown) is retried; logs are shipped once."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
import uuid
from datetime import date
from http.server import ThreadingHTTPServer

import boto3
import pytest

from _receivers import QuietHandler
from priceintel import storage
from priceintel.scrape import Fetcher, RawArchive
from priceintel.scrape.archive import ArchiveError

BUCKET = "priceintel-archive"
FAST = {  # quick retries for tests: 2 retries, ≤ 20 ms apart, a 0.3 s cool-down
    "PRICEINTEL_STORE_RETRIES": "2",
    "PRICEINTEL_STORE_BACKOFF": "0.01",
    "PRICEINTEL_STORE_MAX_BACKOFF": "0.02",
    "PRICEINTEL_STORE_COOLDOWN": "0.3",
    "PRICEINTEL_STORE_TIMEOUT": "2",
}


class Moto:
    """A moto S3 server on loopback that can be stopped (its port then refuses connections) and started again
    on the same port (moto keeps the objects in this process)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._cls = ThreadedMotoServer
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        self.port = self.server.get_host_and_port()[1]
        self.running = True

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.running:
            self.server.stop()
            self.server._server.server_close()  # the port refuses connections (stop() alone leaves it listening)
            self.running = False

    def start(self) -> None:
        if not self.running:
            self.server = self._cls(ip_address="127.0.0.1", port=self.port, verbose=False)
            self.server.start()
            self.running = True


@pytest.fixture(scope="module")
def moto():
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
        "AWS_DEFAULT_REGION": "us-east-1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.delenv("AWS_PROFILE", raising=False)
        server = Moto()
        mp.setenv("AWS_ENDPOINT_URL", server.endpoint)
        boto3.client("s3", endpoint_url=server.endpoint).create_bucket(Bucket=BUCKET)
        yield server
        server.stop()


@pytest.fixture
def s3(moto, monkeypatch):
    """PRICEINTEL_ARCHIVE_URL on a fresh prefix of the bucket, quick retries; (url, prefix, boto3 client)."""
    moto.start()
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    url = f"s3://{BUCKET}/{prefix}"
    monkeypatch.setenv(storage.ARCHIVE_URL_ENV, url)
    for k, v in FAST.items():
        monkeypatch.setenv(k, v)
    return url, prefix, boto3.client("s3", endpoint_url=moto.endpoint)


def _keys(client, prefix: str) -> list[str]:
    items = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/").get("Contents", [])
    return sorted(i["Key"][len(prefix) + 1 :] for i in items)


def _fill(arc: RawArchive) -> list[str]:
    """Three bodies (one twice) over two partitions; their SHA-256s."""
    out = [arc.put(f"http://s/p{i}", 200, {"ETag": f'"{i}"'}, f"<html>{i % 3}</html>".encode(), partition=p)
           for i, p in enumerate(["2026-07-01", "2026-07-01", "2026-07-01", "2026-07-02"])]  # fmt: skip
    return out


def test_object_store_interface_local_and_s3(s3, tmp_path):
    """put / get / exists / list by prefix, create-only and compare-and-swap writes, a missing key: the same
    answers from a folder and from S3."""
    url, _prefix, _client = s3
    for store in (storage.LocalStore(tmp_path / "store"), storage.open_store(url)):
        assert store.put("a/1.txt", b"one") and store.put("a/2.txt", b"two") and store.put("b/3.txt", b"3")
        assert store.get("a/1.txt") == b"one" and store.exists("a/2.txt") and not store.exists("a/9.txt")
        assert store.list("a/") == ["a/1.txt", "a/2.txt"] and len(store.list()) == 3
        assert store.put("a/1.txt", b"changed", if_absent=True) is False and store.get("a/1.txt") == b"one"
        body, tag = store.get_tagged("a/1.txt")
        assert store.put("a/1.txt", b"v2", if_match=tag) is True
        assert store.put("a/1.txt", b"v3", if_match=tag) is False, "a stale tag must not overwrite"
        assert store.get("a/1.txt") == b"v2" and store.get_tagged("nope") is None
        with pytest.raises(storage.StoreMissing, match="a/nope"):
            store.get("a/nope")
    with pytest.raises(storage.config.ConfigError, match="PRICEINTEL_ARCHIVE_URL"):
        storage.open_store("ftp://x/y")


def test_archive_writes_reads_and_replays_through_s3_with_the_local_layout(s3, tmp_path):
    url, prefix, client = s3
    arc = RawArchive(tmp_path / "raw")
    assert arc.store is not None and arc.location == url
    shas = _fill(arc)
    assert arc.get(shas[1]) == b"<html>1</html>" and arc.has(shas[0])
    assert [r["url"] for r in arc.iter_index("2026-07-01")] == ["http://s/p0", "http://s/p1", "http://s/p2"]
    assert arc.flush()["pending_lines"] == 0 and arc.flush()["pending_objects"] == 0

    local = RawArchive(tmp_path / "local", store="local")
    _fill(local)
    on_disk = sorted(p.relative_to(local.root).as_posix() for p in local.root.rglob("*") if p.is_file())
    assert _keys(client, prefix) == on_disk, "the S3 keys mirror the local layout"
    for key in on_disk:
        remote = client.get_object(Bucket=BUCKET, Key=f"{prefix}/{key}")["Body"].read()
        if key.endswith(".gz"):
            assert gzip.decompress(remote) == gzip.decompress((local.root / key).read_bytes())
        else:
            strip = [{k: v for k, v in json.loads(x).items() if k != "fetched_at"} for x in remote.splitlines()]
            assert strip == [
                {k: v for k, v in json.loads(x).items() if k != "fetched_at"}
                for x in (local.root / key).read_bytes().splitlines()
            ]

    # a second process (its own, empty spool) replays everything from S3 alone
    other = RawArchive(tmp_path / "elsewhere" / "raw")
    assert other.partitions() == ["2026-07-01", "2026-07-02"]
    replayed = [(rec["url"], body) for rec, body in other.replay()]
    assert replayed == [(f"http://s/p{i}", f"<html>{i % 3}</html>".encode()) for i in range(4)]
    assert other.spool is not None and not any(other.spool.dir.rglob("*.gz"))
    with pytest.raises(ArchiveError, match="no archived object"):
        other.get("0" * 64)
    with pytest.raises(ArchiveError, match="no archive index partition '2020-01-01'"):
        list(other.iter_index("2020-01-01"))


def _page_server(pages: int, on_hit):
    """Loopback shop serving /p/<n>; calls on_hit(n) before answering."""

    class Handler(QuietHandler):
        def do_GET(self):
            n = int(self.path.rsplit("/", 1)[-1])
            on_hit(n)
            self.reply(200, f"<html><body>page {n} {'x' * 200}</body></html>".encode(), "text/html")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def test_outage_mid_batch_is_retried_recorded_spooled_and_uploaded_later(s3, moto, tmp_path, caplog):
    url, prefix, client = s3
    n_pages, stop_at = 24, 8
    lock = threading.Lock()

    def on_hit(n: int) -> None:
        if n == stop_at:
            with lock:
                moto.stop()  # the store goes away in the middle of the batch: connections are refused

    httpd, base = _page_server(n_pages, on_hit)
    arc = RawArchive(tmp_path / "raw")
    urls = [f"{base}/p/{n}" for n in range(n_pages)]
    t0 = time.perf_counter()
    try:
        with caplog.at_level(logging.WARNING, logger="priceintel.archive"):
            with Fetcher(archive=arc, obey_robots=False, max_workers=1, allow=[base]) as fetcher:
                results = fetcher.get_many(urls, meta={"retailer": "shop"}, progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
    elapsed = time.perf_counter() - t0

    # the batch completed: every page fetched and archived (addressed), none failed for the store's sake
    assert [r.ok for r in results] == [True] * n_pages and all(r.sha256 for r in results)
    assert elapsed < 10, f"an outage must not stall the batch ({elapsed:.1f}s)"
    store = arc.store
    assert store is not None
    assert store.stats["retries"] >= 2 and store.stats["failures"] >= 1, store.stats  # retried, then gave up
    # recorded: in the spool's outage journal and the log, naming the store and the refused connection
    outages = arc.outages()
    assert outages and all(o["store"] == url for o in outages)
    assert any("Could not connect" in o["error"] for o in outages)
    assert "testing-secret-key" not in json.dumps(outages)
    assert any("object store unavailable" in r.getMessage() for r in caplog.records)
    # nothing lost: the bodies fetched after the stop wait in the spool, and the index lines with them
    after = {r.sha256 for r in results[stop_at:]}
    spooled = {p.name[: -len(".gz")] for p in (arc.spool.dir / "put").rglob("*.gz")}
    assert after <= spooled, "every body fetched during the outage is in the spool"
    assert all(arc.get(r.sha256) == r.body for r in results[stop_at:]), "reads see the spool"
    warnings = [r for r in caplog.records if "object store unavailable" in r.getMessage()]
    assert len(warnings) <= 3, "one warning per outage, not one per page"
    pending = arc.flush()  # the store is still down: nothing moves, nothing raises
    assert pending["pending_objects"] == len(spooled) and pending["error"]

    # the store is back: the next successful write uploads the spool, and replay from S3 alone finds every body
    moto.start()
    assert {f"objects/{s[:2]}/{s}.gz" for s in after}.isdisjoint(_keys(client, prefix))
    time.sleep(0.35)  # the cool-down
    arc.put("http://s/after", 200, {}, b"<html>back</html>")
    done = arc.flush()
    assert done["pending_objects"] == 0 and done["pending_lines"] == 0 and done["error"] is None
    assert arc.spool.stats["uploaded"] == len(spooled)
    fresh = RawArchive(tmp_path / "fresh" / "raw")
    replayed = {rec["url"]: body for rec, body in fresh.replay()}
    assert {u: replayed.get(u) for u in urls} == {r.url: r.body for r in results}
    assert replayed["http://s/after"] == b"<html>back</html>"
    assert len(list(fresh.iter_index())) == n_pages + 1, "no index line lost or doubled"


def test_throttling_is_retried_with_backoff(tmp_path, monkeypatch):
    """503 SlowDown twice, then the write goes through: two retries counted, no error."""
    seen: list[str] = []

    class Throttle(QuietHandler):
        protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue" at once

        def do_PUT(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.path)
            if len(seen) <= 2:
                slow_down = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
                self.reply(503, slow_down)
            else:
                self.reply(200, headers={"ETag": '"abc"'})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Throttle)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
        for k, v in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(k, v)
        store = storage.S3Store("bkt", "p", storage.RetryPolicy(retries=3, backoff=0.01, max_backoff=0.02))
        slept: list[float] = []
        store._sleep = slept.append
        assert store.put("k", b"data") is True
        assert store.stats["retries"] == 2 and len(seen) == 3 and all(0 <= s <= 0.02 for s in slept)
        # a store that keeps failing: StoreUnavailable after retries, then refused at once while cooling down
        seen.clear()
        down = storage.S3Store("bkt", "p", storage.RetryPolicy(retries=1, backoff=0, cooldown=60))
        with pytest.raises(storage.StoreUnavailable, match="after 2 attempt"):
            down.put("k", b"data")
        calls = len(seen)
        with pytest.raises(storage.StoreUnavailable, match="store unavailable"):
            down.get("k")
        assert len(seen) == calls, "no request while the store cools down"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_ship_logs_uploads_finished_files_once(s3, tmp_path, monkeypatch):
    url, prefix, client = s3
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "2026-07-01.jsonl").write_text('{"msg": "old"}\n')
    (logs / "2026-07-02.jsonl").write_text('{"msg": "today, still open"}\n')
    today = date(2026, 7, 2)
    first = storage.ship_logs(logs, today=today)
    assert first["shipped"] == ["2026-07-01.jsonl"] and first["error"] is None and first["pending"] == 0
    keys = [k for k in _keys(client, prefix) if k.startswith("logs/")]
    assert len(keys) == 1 and keys[0].endswith("/2026-07-01.jsonl.gz")
    body = client.get_object(Bucket=BUCKET, Key=f"{prefix}/{keys[0]}")["Body"].read()
    assert gzip.decompress(body) == b'{"msg": "old"}\n'
    assert json.loads((logs / "shipped.json").read_text())["2026-07-01.jsonl"]["key"] == keys[0]
    assert storage.ship_logs(logs, today=today)["shipped"] == [], "shipped once"
    monkeypatch.delenv(storage.ARCHIVE_URL_ENV)
    assert storage.ship_logs(logs, today=date(2026, 7, 3))["shipped"] == [], "no object storage: nothing shipped"


def test_the_scheduler_uploads_the_spool_and_reports_it(s3, moto, tmp_path, monkeypatch):
    """`schedule.storage_upkeep` (called at the end of every scheduled run): while the store is down it says
    what waits; once it is back it uploads the spool and the logs, today's file as it stands too (a container
    task's disk ends with the task)."""
    from datetime import UTC, datetime

    from priceintel.pipeline import schedule

    url, prefix, client = s3
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path))  # where the logs are written (obs.logs.log_dir)
    since = datetime.now(UTC)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "2026-07-01.jsonl").write_text('{"msg": "x"}\n')
    today = f"{since:%Y-%m-%d}.jsonl"
    (tmp_path / "logs" / today).write_text('{"msg": "this run"}\n')
    moto.stop()
    arc = RawArchive(tmp_path / "raw")
    shas = [arc.put(f"http://s/{i}", 200, {}, f"<html>{i}</html>".encode(), partition="2026-07-01") for i in (1, 2)]
    down = schedule.storage_upkeep(tmp_path, since)
    assert any("2 page body(ies) kept in the local spool" in ln and "2 still waiting" in ln for ln in down), down
    assert any(ln.startswith("object storage:") for ln in down)
    moto.start()
    time.sleep(0.35)  # the cool-down
    up = schedule.storage_upkeep(tmp_path, since)
    assert any("2 uploaded now, 0 still waiting" in ln for ln in up), up
    assert not any(ln.startswith("object storage:") for ln in up), up
    keys = _keys(client, prefix)
    assert {f"objects/{s[:2]}/{s}.gz" for s in shas} <= set(keys) and "index/2026-07-01.jsonl" in keys
    assert any(k.startswith("logs/") and k.endswith("2026-07-01.jsonl.gz") for k in keys)
    assert any(k.startswith("logs/") and k.endswith(f"{today}.gz") for k in keys)
    assert [b for _, b in RawArchive(tmp_path / "other" / "raw").replay()] == [b"<html>1</html>", b"<html>2</html>"]


def test_a_scrape_stage_with_the_store_down_completes_and_records_the_outage(s3, moto, tmp_path):
    """The pipeline's scrape stage (demo source) while the object store refuses connections: every page is
    scraped, the outage is a scrape error of kind archive_unavailable (loaded into scrape_error), the bodies wait
    in the spool, and they are uploaded once the store is back."""
    from priceintel.pipeline import stages

    url, prefix, client = s3
    moto.stop()
    try:
        params = stages.validate_params(data_dir=tmp_path, seed=3, n_products=3, days=2, world_start="2026-07-01",
                                        retailers="amazon", product_limit=2)
        offers, errors, _ = stages.scrape_stage(params)
    finally:
        moto.start()
    assert len(offers) == 2 * 2 and offers["price"].notna().all()  # the run completed
    (row,) = errors[errors["kind"] == "archive_unavailable"].to_dict("records")
    assert url in row["message"] and "page body(ies) kept in the local spool" in row["message"]
    assert "testing-secret-key" not in row["message"]
    arc = RawArchive(tmp_path / "raw")
    assert arc.spool is not None and any((arc.spool.dir / "put").rglob("*.gz"))
    time.sleep(0.35)  # the cool-down
    done = arc.flush()
    assert done["error"] is None and done["pending_objects"] == 0
    assert any(k.startswith("objects/") for k in _keys(client, prefix))
