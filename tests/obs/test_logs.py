"""Structured logs: JSON lines with the ids, the daily file, redaction, and the ids a child process inherits."""

import asyncio
import contextvars
import json
import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest

from priceintel import config
from priceintel.obs import logs


@pytest.fixture()
def logdir(tmp_path, monkeypatch):
    """Logs set up for this test into tmp_path/logs (JSON on stderr), removed afterwards."""
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PRICEINTEL_LOG_FORMAT", "json")
    monkeypatch.setenv("PRICEINTEL_LOG_LEVEL", "INFO")
    logs.reset()
    assert logs.setup("test")
    yield tmp_path / "logs"
    logs.reset()


def _lines(directory) -> list[dict]:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    path = directory / f"{day}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]  # every line is valid JSON


def test_lines_carry_the_ids_and_go_to_the_daily_file(capsys, logdir):
    log = logging.getLogger("priceintel.test")
    with logs.context(run_id="run-1", task="scrape"):
        log.info("fetched %d pages", 12, extra={"shop": "amazon"})
        with logs.context(tenant="acme", request_id="req-9"):
            log.warning("inner")
        log.info("outer again")
    log.info("no ids")
    first, inner, outer, bare = _lines(logdir)
    assert first["message"] == "fetched 12 pages" and first["level"] == "INFO" and first["logger"] == "priceintel.test"
    assert (first["run_id"], first["task"], first["shop"], first["service"]) == ("run-1", "scrape", "amazon", "test")
    assert first["pid"] == os.getpid() and datetime.fromisoformat(first["timestamp"]).tzinfo is not None
    assert (inner["tenant"], inner["request_id"], inner["run_id"]) == ("acme", "req-9", "run-1")
    assert "tenant" not in outer and outer["task"] == "scrape"
    assert not {"run_id", "task", "tenant", "request_id"} & set(bare)
    err = capsys.readouterr().err.splitlines()  # stderr gets the same JSON lines
    assert [json.loads(line)["message"] for line in err] == ["fetched 12 pages", "inner", "outer again", "no ids"]


def test_secrets_are_redacted_in_messages_and_tracebacks(logdir, monkeypatch):
    monkeypatch.setenv("PRICEINTEL_SMTP_PASSWORD", "smtp-pass-1234567")
    log = logging.getLogger("priceintel.test")
    log.error("connect to %s failed", "postgresql://bob:hunter2secret@db.example/x")
    try:
        raise RuntimeError("login with smtp-pass-1234567 refused; api_key=abcdef123456")
    except RuntimeError:
        log.exception("delivery failed")
    text = (logdir / f"{datetime.now(UTC):%Y-%m-%d}.jsonl").read_text()
    assert "hunter2secret" not in text and "smtp-pass-1234567" not in text and "abcdef123456" not in text
    first, second = _lines(logdir)
    assert first["message"] == "connect to postgresql://bob:***@db.example/x failed"
    assert "RuntimeError: login with *** refused; api_key=***" in second["exception"]


def test_setup_is_idempotent_and_checks_its_variables(logdir, monkeypatch):
    assert not logs.setup("again")  # the second call changes nothing
    assert sum(isinstance(h, logs.DailyFileHandler) for h in logging.getLogger().handlers) == 1
    logs.reset()
    for name, bad in (("PRICEINTEL_LOG_LEVEL", "LOUD"), ("PRICEINTEL_LOG_FORMAT", "xml")):  # each named alone
        monkeypatch.setenv(name, bad)
        with pytest.raises(config.ConfigError, match=name):
            logs.setup()
        monkeypatch.delenv(name)


def test_text_format_for_a_person(capsys, logdir, monkeypatch):
    logs.reset()
    monkeypatch.setenv("PRICEINTEL_LOG_FORMAT", "text")
    logs.setup("cli")
    with logs.context(run_id="run-2", task="clean"):
        logging.getLogger("priceintel.test").warning("token=abcdefghijkl looks odd")
    err = capsys.readouterr().err.strip()
    assert err.endswith("WARNING priceintel.test [run=run-2 task=clean] token=*** looks odd")
    assert _lines(logdir)[0]["task"] == "clean"  # the file stays JSON


def test_ids_follow_threads_and_tasks_without_leaking():
    seen = {}

    def worker(name):
        seen[name] = logs.current().get("request_id")

    with logs.context(request_id="a"):
        t = threading.Thread(target=contextvars.copy_context().run, args=(worker, "thread"))
        t.start()
        t.join()

    async def request(rid):
        with logs.context(request_id=rid):
            await asyncio.sleep(0.01)
            return logs.current()["request_id"]

    async def both():
        return await asyncio.gather(request("r1"), request("r2"))

    assert asyncio.run(both()) == ["r1", "r2"]
    assert seen == {"thread": "a"} and "request_id" not in logs.current()
    with pytest.raises(ValueError, match="unknown log id"):
        logs.bind(user="x")


def test_a_task_kernel_logs_with_the_run_and_task_its_parent_exported(logdir, tmp_path):
    """A child process (as a pipeline kernel is) set up by `obs.start_task_kernel` writes to the same daily file
    with the exported run, task and tenant ids; its stderr gets warnings only."""
    code = (
        "import logging; from priceintel import obs; assert obs.start_task_kernel();"
        "logging.getLogger('priceintel.kernel').info('in the kernel');"
        "logging.getLogger('priceintel.kernel').warning('careful')"
    )
    with logs.context(export=True, run_id="run-3", task="match", tenant="demo"):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "careful" in done.stderr and "in the kernel" not in done.stderr
    assert "PRICEINTEL_TASK" not in os.environ and "PRICEINTEL_RUN_ID" not in os.environ  # restored
    kernel = [line for line in _lines(logdir) if line["logger"] == "priceintel.kernel"]
    assert [k["message"] for k in kernel] == ["in the kernel", "careful"]
    assert {(k["run_id"], k["task"], k["tenant"], k["service"]) for k in kernel} == {
        ("run-3", "match", "demo", "pipeline-task")
    }
    assert kernel[0]["pid"] != os.getpid()
    # without a parent whose logs are set up (a test run, JupyterLab), a kernel configures nothing
    env = {k: v for k, v in os.environ.items() if k != logs.PARENT_ENV}
    code = "from priceintel import obs; assert not obs.start_task_kernel()"
    env["PRICEINTEL_TASK"] = "match"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
