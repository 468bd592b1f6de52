"""JupyterLab, the data scientists' front door: `priceintel lab` (what `make lab` runs) on a real server,
the contents API through jupytext, and a real browser that opens and runs a pipeline notebook."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from priceintel import PriceIntelError, config
from priceintel.pipeline import lab

NOTEBOOKS = config.PROJ_ROOT / "notebooks"
TASK_NOTEBOOKS = {t["name"]: t["source"] for t in
                  yaml.safe_load((config.PROJ_ROOT / "pipeline.yaml").read_text())["tasks"]}


# --- the command and the task inputs (fast) ------------------------------------------------------


def test_lab_command_is_loopback_with_ploomber_contents_manager_off(monkeypatch):
    monkeypatch.setattr(lab, "is_root", lambda: False)
    cmd = lab.lab_command(8899)
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert "--ip=127.0.0.1" in cmd and "--port=8899" in cmd and "--no-browser" in cmd
    assert f"--ServerApp.root_dir={NOTEBOOKS}" in cmd
    assert "--ServerApp.jpserver_extensions={'ploomber': False, 'ploomber_extension': False}" in cmd
    assert "--allow-root" not in cmd  # an ordinary user gets no root-only flag
    monkeypatch.setattr(lab, "is_root", lambda: True)
    assert "--allow-root" in lab.lab_command(8899)
    assert "--no-browser" not in lab.lab_command(8899, open_browser=True)


def test_make_lab_runs_priceintel_lab():
    out = subprocess.run(["make", "-n", "lab"], cwd=config.PROJ_ROOT, capture_output=True, text=True).stdout
    assert re.search(r"priceintel lab\b", out), out


def test_task_inputs_leaves_pipeline_injection_alone():
    ns = {"upstream": {"scrape": {"offers": "x.parquet"}}, "product": {"nb": "a.html"}, "data_dir": "/d"}
    before = dict(ns)
    assert lab.task_inputs("clean", ns) is None
    assert ns == before


def test_task_inputs_reads_declared_products_like_ploomber(tmp_path, monkeypatch):
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PRICEINTEL_REPORTS_DIR", str(tmp_path / "reports"))
    ns = {"upstream": ["world", "scrape", "clean", "match"], "product": None, "data_dir": "data"}
    values = lab.task_inputs("load", ns)
    assert ns["product"] == {"nb": str(tmp_path / "reports" / "04-load.html"),
                             "receipt": str(tmp_path / "data" / "interim" / "load_receipt.json")}
    assert set(ns["upstream"]) == {"world", "scrape", "clean", "match"}
    assert ns["upstream"]["world"]["catalogue"] == str(tmp_path / "data" / "demo" / "world" / "products.csv")
    assert ns["upstream"]["clean"]["listings"] == str(tmp_path / "data" / "interim" / "listings.parquet")
    assert ns["data_dir"] == str(tmp_path / "data")  # the env's data dir, not the notebook's relative default
    assert values["product"] == ns["product"]
    first = lab.task_inputs("world", {"upstream": None, "product": None})
    assert first["upstream"] is None and first["seed"] == 42
    with pytest.raises(PriceIntelError, match="no task 'nope'"):
        lab.task_inputs("nope", {"product": None})


@pytest.mark.parametrize("task", sorted(TASK_NOTEBOOKS))
def test_task_notebook_takes_its_inputs_and_has_no_injected_cell(task):
    """Every pipeline notebook calls task_inputs with its own task name, right after its parameters cell, and
    no file in git carries a Ploomber-injected cell."""
    text = (config.PROJ_ROOT / TASK_NOTEBOOKS[task]).read_text()
    assert "injected-parameters" not in text
    cells = re.split(r"^# %%", text, flags=re.M)
    params = next(i for i, c in enumerate(cells) if c.startswith(' tags=["parameters"]'))
    assert f'task_inputs("{task}", globals())' in cells[params + 1]


def test_no_notebook_in_the_tree_has_an_injected_cell():
    for path in sorted(NOTEBOOKS.rglob("*")):
        if path.suffix in (".py", ".ipynb"):
            assert "injected-parameters" not in path.read_text(), path


# --- the real server, and a real browser (slow) --------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab_db(pg_server_url):
    """A fresh, migrated, empty database of its own (other tests fill the session database)."""
    from priceintel.db.engine import create_database, dispose_engines, drop_database
    from priceintel.db.migrate import upgrade

    name = f"priceintel_lab_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    upgrade(url)  # the apps previewed with Voila read the schema
    yield url
    dispose_engines()
    drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def jupyterlab(lab_db, tmp_path_factory):
    """`priceintel lab` (the command `make lab` runs) on a free loopback port, with a known token."""
    pg_url = lab_db
    port, token = _free_port(), secrets.token_hex(16)
    data = tmp_path_factory.mktemp("lab")
    env = dict(os.environ, JUPYTER_TOKEN=token, DATABASE_URL=pg_url, PRICEINTEL_DATA_DIR=str(data / "data"),
               PRICEINTEL_REPORTS_DIR=str(data / "reports"), JUPYTER_RUNTIME_DIR=str(data / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(data / "workspaces"), JUPYTERLAB_SETTINGS_DIR=str(data / "settings"))
    env.pop("COV_CORE_SOURCE", None)
    proc = subprocess.Popen([sys.executable, "-m", "priceintel.cli", "lab", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=config.PROJ_ROOT)
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail("jupyterlab exited: " + proc.stdout.read()[-3000:])
            try:
                if session.get(f"{base}/api/status", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            pytest.fail("jupyterlab did not start in 120 s")
        yield {"base": base, "token": token, "http": session, "data": data / "data"}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
def test_lab_needs_the_token(jupyterlab):
    r = requests.get(f"{jupyterlab['base']}/api/contents/", timeout=30)
    assert r.status_code == 403


@pytest.mark.slow
def test_every_notebook_lists_and_opens_as_a_notebook(jupyterlab):
    http, base = jupyterlab["http"], jupyterlab["base"]
    listing = http.get(f"{base}/api/contents/", timeout=30)
    assert listing.status_code == 200, listing.text[:500]
    kinds = {item["name"]: item["type"] for item in listing.json()["content"]}
    on_disk = sorted(p.name for p in NOTEBOOKS.glob("*.py"))
    assert on_disk and all(kinds.get(name) == "notebook" for name in on_disk), kinds
    apps = http.get(f"{base}/api/contents/apps", timeout=30).json()["content"]
    app_names = sorted(item["name"] for item in apps if item["type"] == "notebook")
    assert app_names == sorted(p.name for p in (NOTEBOOKS / "apps").glob("*.ipynb"))
    for rel in on_disk + [f"apps/{name}" for name in app_names]:
        r = http.get(f"{base}/api/contents/{rel}", params={"type": "notebook", "content": 1}, timeout=60)
        assert r.status_code == 200, (rel, r.text[:300])
        cells = r.json()["content"]["cells"]
        assert any(c["cell_type"] == "code" and c["source"].strip() for c in cells), rel
        if rel in {Path(src).name for src in TASK_NOTEBOOKS.values()}:
            assert any("parameters" in c["metadata"].get("tags", []) for c in cells), rel


@pytest.mark.slow
def test_saving_writes_the_percent_py_without_outputs(jupyterlab):
    """A notebook saved from JupyterLab (outputs, execution counts, kernel metadata as the front-end sends them)
    is written back as the same percent-format .py: a clean git diff."""
    http, base = jupyterlab["http"], jupyterlab["base"]
    nb = http.get(f"{base}/api/contents/02-clean.py", params={"type": "notebook", "content": 1},
                  timeout=60).json()["content"]
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "SHOULD-NOT-BE-SAVED\n"}]
    code["execution_count"] = 7
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11"}
    name = f"zz-save-test-{uuid.uuid4().hex[:8]}.py"
    try:
        r = http.put(f"{base}/api/contents/{name}", json={"type": "notebook", "format": "json", "content": nb},
                     timeout=60)
        assert r.status_code in (200, 201), r.text[:300]
        saved = (NOTEBOOKS / name).read_text()
        assert saved == (NOTEBOOKS / "02-clean.py").read_text()
        assert "SHOULD-NOT-BE-SAVED" not in saved and "kernelspec" not in saved
        assert not (NOTEBOOKS / name.replace(".py", ".ipynb")).exists()  # no paired .ipynb appears
    finally:
        (NOTEBOOKS / name).unlink(missing_ok=True)


@pytest.mark.slow
def test_open_and_run_the_scrape_notebook_in_chromium(jupyterlab):
    """Open 01-scrape.py in headless Chromium, see its cells, run its parameters cell and the task-inputs cell
    on a real kernel, and see the output: the declared products under the run's data dir."""
    from _browser import chromium

    base, token = jupyterlab["base"], jupyterlab["token"]
    with chromium() as browser:
        page = browser.new_page(anonymous=True, viewport={"width": 1440, "height": 900})
        page.goto(f"{base}/lab/tree/01-scrape.py?token={token}", timeout=120_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        page.wait_for_function("() => document.querySelectorAll('.jp-NotebookPanel .jp-Cell').length >= 5",
                               timeout=60_000)
        assert "pipeline.scrape_stage(params" in page.locator(".jp-NotebookPanel").inner_text()
        # a percent .py has no kernelspec: JupyterLab asks once which kernel (the default is the venv's python3)
        select = page.locator(".jp-Dialog button.jp-mod-accept")
        try:
            select.wait_for(timeout=20_000)
            select.click()
        except Exception:  # noqa: BLE001 - no dialog: the preferred kernel started by itself
            pass
        # the kernel is up when its status says idle
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-Notebook-ExecutionIndicator, .jp-KernelStatus')]"
            ".some(e => (e.getAttribute('data-status') || e.textContent || '').match(/idle/i))",
            timeout=120_000)
        params = page.locator(".jp-NotebookPanel .jp-CodeCell").first
        assert "retailers = \"amazon,walmart,target\"" in params.inner_text()
        params.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")  # the parameters cell
        page.keyboard.press("Shift+Enter")  # the task-inputs cell
        second = page.locator(".jp-NotebookPanel .jp-CodeCell").nth(1)
        second.locator(".jp-OutputArea-output").first.wait_for(timeout=120_000)
        output = second.locator(".jp-OutputArea").inner_text()
        assert "offers.parquet" in output and str(jupyterlab["data"]) in output, output[:1000]
        assert "[1]" in params.locator(".jp-InputPrompt").inner_text()
        shots = config.reports_dir() / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "jupyterlab.png"))
        page.close()


@pytest.mark.slow
def test_apps_preview_with_voila_from_jupyterlab(jupyterlab):
    """An app notebook opened in JupyterLab has Voila's 'Render with Voilà' button, and the lab server renders
    the app (its own token auth; no app sign-in) on the database `priceintel lab` points at."""
    from _browser import chromium

    base, token = jupyterlab["base"], jupyterlab["token"]
    with chromium() as browser:
        page = browser.new_page(anonymous=True, viewport={"width": 1440, "height": 900})
        page.goto(f"{base}/lab/tree/apps/price_monitor.ipynb?token={token}", timeout=120_000)
        page.locator(".jp-NotebookPanel-toolbar [title='Render with Voilà']").first.wait_for(timeout=120_000)
        page.goto(f"{base}/voila/render/apps/price_monitor.ipynb?token={token}", timeout=120_000)
        page.get_by_text("No matched products in the database yet").wait_for(timeout=120_000)
        assert "Price monitor" in page.inner_text("body")
        assert "Traceback" not in page.content()
        page.close()
