"""Which user an app kernel serves (Voila's prelaunch hook), how changes are recorded, and viewers refused."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pandas as pd
import pytest
import sqlalchemy as sa
from tornado.web import HTTPError

from priceintel import PriceIntelError
from priceintel.apps import auth, session
from priceintel.apps.login import prelaunch_hook
from priceintel.apps.serve import VOILA_CONFIG, voila_command
from priceintel.db import tenancy


@pytest.fixture()
def kernel_user():
    """Sign a kernel user in for one test; the kernel has none again afterwards."""
    yield session.sign_in_kernel
    session._USER.clear()
    session._SESSION.clear()
    tenancy.bind(None)


def test_prelaunch_hook_names_the_signed_in_user_to_the_kernel(kernel_user, pg_engine):
    tenancy.ensure_tenant(pg_engine, "hook-tenant")
    auth.add_user(pg_engine, "ann.lee", "long enough pw", replace=True, tenant="hook-tenant")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    req = SimpleNamespace(current_user=SimpleNamespace(username="ann.lee", session=auth.Session(7, 3)))
    out = prelaunch_hook(req, nb, "/tmp")
    assert [c.source for c in out.cells][1:] == ["x = 1"]
    first = out.cells[0]
    assert first.metadata["tags"] == ["priceintel-session"]
    exec(first.source, {})  # what the kernel runs first
    assert session.user() == "ann.lee" and session.label() == "user:ann.lee"
    assert session._SESSION == [auth.Session(7, 3)]  # the session the kernel was started under
    assert tenancy.current() == "hook-tenant"  # and it works in the user's tenant only
    removed = SimpleNamespace(current_user=SimpleNamespace(username="gone.user", session=auth.Session(8, 1)))
    with pytest.raises(HTTPError):  # a user no longer in the database gets no kernel
        prelaunch_hook(removed, nbformat.v4.new_notebook(), "/tmp")
    for nobody in (None, SimpleNamespace(username="bad name'); import os; ('")):
        with pytest.raises(HTTPError):
            prelaunch_hook(SimpleNamespace(current_user=nobody), nbformat.v4.new_notebook(), "/tmp")
    with pytest.raises(auth.AuthError):
        session.sign_in_kernel("x'y")


def test_voila_reads_the_hook_from_its_config_file(monkeypatch):
    cmd = voila_command(9999)
    flag = next(a for a in cmd if a.startswith("--Voila.config_file_paths="))
    folder = json.loads(flag.split("=", 1)[1])[0]
    text = (Path(folder) / "voila.py").read_text()
    assert text == VOILA_CONFIG and "prelaunch_hook" in text
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.setenv(session.APP_KERNEL_ENV, "")  # the file sets it (for the server's kernels): undone after
    cfg = PyFileConfigLoader("voila.py", path=folder).load_config()
    assert cfg.VoilaConfiguration.prelaunch_hook is prelaunch_hook
    allowed = cfg.MappingKernelManager.allowed_message_types
    assert "comm_msg" in allowed and "execute_request" not in allowed  # browsers send widget messages, no code


def test_viewers_are_refused_and_others_named(pg_engine, kernel_user):
    assert session.may_change(pg_engine) is None and session.label() == "notebook"  # no app user: JupyterLab
    auth.add_user(pg_engine, "sess-viewer", "long enough pw", replace=True, role="viewer")
    auth.add_user(pg_engine, "sess-analyst", "long enough pw", replace=True, role="analyst")
    kernel_user("sess-analyst")
    assert session.may_change(pg_engine) is None
    kernel_user("sess-viewer")
    assert "viewer" in session.may_change(pg_engine)
    kernel_user("sess-gone")
    assert "no longer exists" in session.may_change(pg_engine)
    # a kernel started under a session that has since ended (sign-out, new password) may change nothing
    account = auth.account_of(pg_engine, "sess-analyst")
    kernel_user("sess-analyst", account.user_id, account.version)
    assert session.may_change(pg_engine) is None
    auth.end_sessions(pg_engine, "sess-analyst")
    assert "session of sess-analyst has ended" in session.may_change(pg_engine)


def test_an_app_kernel_without_a_user_may_change_nothing(pg_engine, kernel_user, monkeypatch):
    assert session.may_change(pg_engine) is None  # a notebook in JupyterLab
    monkeypatch.setenv(session.APP_KERNEL_ENV, "1")  # what the apps' voila.py sets for its kernels
    assert "no signed-in user" in session.may_change(pg_engine)
    assert "os.environ[APP_KERNEL_ENV] = \"1\"" in VOILA_CONFIG


def test_a_viewer_cannot_change_alerts_matches_or_imports(pg_engine, kernel_user, tmp_path):
    from priceintel.apps import match_review, onboarding

    auth.add_user(pg_engine, "sess-viewer", "long enough pw", replace=True, role="viewer")
    kernel_user("sess-viewer")
    with pytest.raises(PriceIntelError, match="viewer"):
        session.require_change(pg_engine)
    res = onboarding.run_import(pg_engine, "catalog", "c.csv", b"id,title\nVIEWER-A1,Blender\n", archive_root=tmp_path)
    assert res["ok"] is False and "viewer" in res["message"]
    with pg_engine.connect() as conn:  # a SKU no other test of the shared database imports
        assert conn.execute(sa.text("SELECT count(*) FROM dim_product WHERE sku = 'VIEWER-A1'")).scalar() == 0
    review = match_review.ReviewSession.__new__(match_review.ReviewSession)
    review.engine = pg_engine
    review.queue = pd.DataFrame([{"retailer": "r", "item_id": "1", "sku": "A1"}])
    review.pos, review.done = 0, 0
    with pytest.raises(PriceIntelError, match="viewer"):
        review.decide(True)
    assert review.pos == 0  # the pair stays on screen
