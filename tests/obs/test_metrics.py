"""Metrics shared by processes: real child processes write, the parent's `render` adds them up; the files of
ended processes are merged without changing a total; the fetcher counts pages, errors and exchange times."""

import os
import subprocess
import sys
import textwrap

import pytest
from _obs_util import label_values, total

from _receivers import QuietHandler, serve_handler
from priceintel.obs import metrics
from priceintel.scrape.fetch import Fetcher

CHILD = textwrap.dedent(
    """
    import sys, time
    from priceintel.obs import metrics
    n = int(sys.argv[1])
    for _ in range(n):
        metrics.record_fetch("amazon", "ok", None)
    metrics.record_fetch("walmart", "error", "timeout")
    metrics.FETCH_SECONDS.labels("amazon").observe(0.2 * n)
    metrics.task_finished("scrape", "executed", 3.0 * n, {"offers": 100 * n})
    if len(sys.argv) > 2:  # stay alive until told
        print("ready", flush=True)
        sys.stdin.readline()
    """
)


def _child(n: int, wait: bool = False) -> subprocess.Popen:
    args = [sys.executable, "-c", CHILD, str(n)] + (["wait"] if wait else [])
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_two_processes_are_added_up_and_merged_when_they_end(metrics_dir):
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(metrics_dir)  # the children inherit it
    first, second = _child(3, wait=True), _child(4, wait=True)
    assert first.stdout.readline().strip() == "ready" and second.stdout.readline().strip() == "ready"
    text = metrics.render()[0].decode()
    assert total(text, "priceintel_fetch_pages_total", shop="amazon", outcome="ok") == 7
    assert total(text, "priceintel_fetch_errors_total", shop="walmart", kind="timeout") == 2
    assert total(text, "priceintel_fetch_duration_seconds_count", shop="amazon") == 2
    assert total(text, "priceintel_fetch_duration_seconds_sum", shop="amazon") == pytest.approx(1.4)
    assert total(text, "priceintel_pipeline_task_duration_seconds_bucket", task="scrape", le="10.0") == 1  # 9 s
    assert total(text, "priceintel_pipeline_tasks_total", task="scrape", status="executed") == 2
    assert total(text, "priceintel_pipeline_task_rows", task="scrape", product="offers") in (300, 400)  # mostrecent
    live = sorted(p.name for p in metrics_dir.glob("*.db"))
    assert len(live) == 6 and all(f"_{p.pid}@" in name for name in live for p in [first, second] if str(p.pid) in name)
    first.communicate("\n", timeout=30)
    second.communicate("\n", timeout=30)

    after = metrics.render()[0].decode()  # the ended processes' files are merged into the archive first
    names = sorted(p.name for p in metrics_dir.glob("*.db"))
    assert names == ["counter_archive.db", "gauge_mostrecent_archive.db", "histogram_archive.db"]
    for name, labels in [
        ("priceintel_fetch_pages_total", {"shop": "amazon", "outcome": "ok"}),
        ("priceintel_fetch_duration_seconds_sum", {"shop": "amazon"}),
        ("priceintel_fetch_duration_seconds_bucket", {"shop": "amazon", "le": "1.0"}),
        ("priceintel_pipeline_tasks_total", {"task": "scrape"}),
        ("priceintel_pipeline_task_rows", {"task": "scrape", "product": "offers"}),
    ]:
        assert total(after, name, **labels) == pytest.approx(total(text, name, **labels)), name
    # a later process adds to the archive; its gauge, newer, wins
    third = _child(1)
    third.communicate(timeout=30)
    metrics.compact()
    final = metrics.render()[0].decode()
    assert total(final, "priceintel_fetch_pages_total", shop="amazon", outcome="ok") == 8
    assert total(final, "priceintel_pipeline_task_rows", task="scrape", product="offers") == 100


def test_compact_leaves_running_processes_and_other_hosts_alone(metrics_dir):
    metrics.record_fetch("target", "ok", None)  # this process: running
    foreign = metrics_dir / "counter_1@another-host.db"
    foreign.write_bytes((metrics_dir / f"counter_{metrics._identity()}.db").read_bytes())
    assert metrics.compact() == 0
    assert foreign.exists()
    text = metrics.render()[0].decode()
    assert total(text, "priceintel_fetch_pages_total", shop="target") >= 2  # both files counted


def test_shop_labels_are_bounded(metrics_dir, monkeypatch):
    monkeypatch.setattr(metrics, "MAX_SHOPS", 3)
    metrics.use_dir(metrics_dir)  # forget the shops seen so far
    labels = [metrics.shop_label(None, f"https://shop{i}.example:8443/p/1") for i in range(5)]
    assert labels == ["shop0.example", "shop1.example", "shop2.example", "other", "other"]
    assert metrics.shop_label("Amazon") == "other" and metrics.shop_label(None, "http://[bad") == "other"
    metrics.use_dir(metrics_dir)
    assert metrics.shop_label("Amazon") == "amazon" and metrics.shop_label(None, "http://[bad") == "unknown"


class _Shop(QuietHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/robots.txt":
            self.reply(200, b"User-agent: *\nDisallow: /private\n")
        elif self.path.startswith("/p/"):
            self.reply(200, b"<html><title>ok</title></html>")
        else:
            self.reply(404, b"gone")


def test_the_fetcher_counts_pages_errors_and_exchange_times(metrics_dir):
    with serve_handler(_Shop) as base, Fetcher(retries=0, allow=[base]) as fetcher:
        results = fetcher.get_many([f"{base}/p/1", f"{base}/p/2"], meta={"retailer": "amazon"}, progress=False)
        assert all(r.ok for r in results)
        assert fetcher.get(f"{base}/gone", meta={"retailer": "amazon"}).error_kind == "http_error"
        assert fetcher.get(f"{base}/private/x", meta={"retailer": "amazon"}).error_kind == "robots_disallowed"
        assert fetcher.get(f"{base}/p/3").ok  # no retailer: the host
    with Fetcher(retries=0, obey_robots=False, timeout=2) as fetcher:
        assert fetcher.get("http://127.0.0.1:9/p/1", meta={"retailer": "walmart"}).error_kind in (
            "unreachable",
            "blocked_address",
        )
    text = metrics.render()[0].decode()
    assert total(text, "priceintel_fetch_pages_total", shop="amazon", outcome="ok") == 2
    assert total(text, "priceintel_fetch_pages_total", shop="amazon", outcome="http_error") == 1
    assert total(text, "priceintel_fetch_pages_total", shop="amazon", outcome="refused") == 1
    assert total(text, "priceintel_fetch_pages_total", shop="127.0.0.1", outcome="ok") == 1
    assert total(text, "priceintel_fetch_errors_total", shop="amazon", kind="http_error") == 1
    assert total(text, "priceintel_fetch_errors_total", shop="amazon", kind="robots_disallowed") == 1
    assert total(text, "priceintel_fetch_errors_total", shop="walmart") == 1
    # one exchange per request sent: robots.txt, 2 pages, the 404 (the refused URL sends nothing)
    assert total(text, "priceintel_fetch_duration_seconds_count", shop="amazon") == 4
    assert label_values(text, "priceintel_fetch_pages_total", "outcome") <= set(metrics.FETCH_OUTCOMES)
