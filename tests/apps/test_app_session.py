"""Which user an app kernel serves (the viewer ticket the Voila server hands it), the apps' Voila settings (kernel
pool, culling), how changes are recorded, and viewers refused."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import sqlalchemy as sa
from tornado.web import HTTPError

from _fixtures_apps import app_notebook_code
from priceintel import PriceIntelError, config
from priceintel.apps import auth, landing, serve, session
from priceintel.apps.login import AppUser, install_viewer_handoff, viewer_ticket_of
from priceintel.apps.serve import VOILA_CONFIG, voila_command
from priceintel.db import tenancy


@pytest.fixture()
def kernel_user():
    """Sign a kernel user in for one test; the kernel has none again afterwards."""
    yield session.sign_in_kernel
    session._USER.clear()
    session._SESSION.clear()
    tenancy.bind(None)


def test_a_viewer_ticket_names_the_signed_in_user_to_the_kernel(kernel_user, pg_engine, monkeypatch):
    tenancy.ensure_tenant(pg_engine, "hook-tenant")
    auth.add_user(pg_engine, "ann.lee", "long enough pw", replace=True, tenant="hook-tenant")
    account = auth.account_of(pg_engine, "ann.lee")
    user = AppUser("ann.lee", session=auth.Session(account.user_id, account.version), tenant="hook-tenant")
    monkeypatch.setenv(session.VIEWER_ENV, viewer_ticket_of(user))  # what Voila puts in the kernel's environment
    assert session.wait_for_viewer() == "ann.lee"
    assert session.user() == "ann.lee" and session.label() == "user:ann.lee"
    assert session._SESSION == [auth.Session(account.user_id, account.version)]  # the session the kernel serves
    assert tenancy.current() == "hook-tenant"  # and it works in the user's tenant only
    assert session.VIEWER_ENV not in os.environ  # read once: nothing the app's code could hand on
    assert session.wait_for_viewer() == "ann.lee"  # a second call changes nothing
    # the tenant comes from the database when the identity provider did not say
    no_tenant = AppUser("ann.lee", session=auth.Session(7, 3))
    assert session.read_viewer_ticket(viewer_ticket_of(no_tenant))[3] == "hook-tenant"
    removed = AppUser("gone.user", session=auth.Session(8, 1))
    with pytest.raises(HTTPError):  # a user no longer in the database gets no kernel
        viewer_ticket_of(removed)
    for nobody in (None, SimpleNamespace(username="bad name'); import os; ('", session=auth.Session(1, 1)),
                   SimpleNamespace(username="ann.lee", session=None)):
        with pytest.raises(HTTPError):
            viewer_ticket_of(nobody)
    with pytest.raises(auth.AuthError):
        session.sign_in_kernel("x'y")


def test_a_ticket_cannot_be_forged_altered_or_reused_late():
    ticket = session.viewer_ticket("ann.lee", 7, 3, "hook-tenant", now=1_000.0)
    assert session.read_viewer_ticket(ticket, now=1_010.0) == ("ann.lee", 7, 3, "hook-tenant")
    body, sig = ticket.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    other = base64.urlsafe_b64encode(json.dumps({**claims, "t": "other-tenant"}).encode()).decode().rstrip("=")
    for bad in (f"{other}.{sig}", f"{body}.{'0' * 64}", body, "", "not a ticket"):
        with pytest.raises(PriceIntelError, match="bad signature"):
            session.read_viewer_ticket(bad, now=1_010.0)
    with pytest.raises(PriceIntelError, match="expired"):
        session.read_viewer_ticket(ticket, now=1_000.0 + session.TICKET_SECONDS + 1)
    with pytest.raises(auth.AuthError):
        session.viewer_ticket("bad name", 1, 1, "t")


def test_an_app_kernel_without_a_ticket_shows_nothing(kernel_user, monkeypatch):
    monkeypatch.delenv(session.VIEWER_ENV, raising=False)
    monkeypatch.delenv(session.APP_KERNEL_ENV, raising=False)
    assert session.wait_for_viewer() is None  # JupyterLab, a test: no app user, nothing to wait for
    monkeypatch.setenv(session.APP_KERNEL_ENV, "1")
    with pytest.raises(PriceIntelError, match="no signed-in user"):
        session.wait_for_viewer()
    monkeypatch.setenv(session.VIEWER_ENV, "forged.0000")
    with pytest.raises(PriceIntelError, match="bad signature"):
        session.wait_for_viewer()
    assert session.user() is None and tenancy.current() is None


def test_the_handoff_replaces_whatever_header_the_browser_sent(pg_engine):
    class Handler:  # stands in for Voila's VoilaHandler: the request info is built from the request's headers
        async def get_generator(self, path=None):
            yield self.request.headers.get_list(session.VIEWER_HEADER)

    install_viewer_handoff(Handler)
    install_viewer_handoff(Handler)  # once only
    from tornado.httputil import HTTPHeaders

    auth.add_user(pg_engine, "hand.off", "long enough pw", replace=True)
    account = auth.account_of(pg_engine, "hand.off")
    h = Handler()
    forged = session.viewer_ticket("someone.else", 1, 1, "hook-tenant")
    h.request = SimpleNamespace(headers=HTTPHeaders({"x-priceintel-viewer": forged}))
    h.current_user = AppUser("hand.off", session=auth.Session(account.user_id, account.version), tenant=account.tenant)

    async def first():
        return [chunk async for chunk in h.get_generator("x.ipynb")][0]

    sent = asyncio.run(first())
    assert len(sent) == 1 and session.read_viewer_ticket(sent[0])[0] == "hand.off"
    h.current_user = None
    with pytest.raises(HTTPError):
        asyncio.run(first())


def test_voila_reads_its_settings_from_the_config_file(monkeypatch):
    cmd = voila_command(9999)
    flag = next(a for a in cmd if a.startswith("--Voila.config_file_paths="))
    folder = json.loads(flag.split("=", 1)[1])[0]
    text = (Path(folder) / "voila.py").read_text()
    assert text == VOILA_CONFIG and "configure(c)" in text
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.setenv(session.APP_KERNEL_ENV, "")  # the file sets it (for the server's kernels): undone after
    monkeypatch.setenv("JUPYTER_PATH", os.environ.get("JUPYTER_PATH", ""))  # the file prepends the apps' templates
    monkeypatch.setenv(serve.POOL_ENV, "2,ops=0,usage=1")
    monkeypatch.setenv(serve.IDLE_ENV, "15")
    monkeypatch.setenv(serve.REFILL_ENV, "3")
    cfg = PyFileConfigLoader("voila.py", path=folder).load_config()
    assert os.environ[session.APP_KERNEL_ENV] == "1"  # inherited by the kernels
    assert cfg.VoilaConfiguration.http_header_envs == [session.VIEWER_HEADER]
    assert cfg.VoilaConfiguration.preheat_kernel is True
    pools = cfg.VoilaKernelManager.kernel_pools_config
    assert pools["price_monitor.ipynb"] == {"pool_size": 2} and pools["ops.ipynb"] == {"pool_size": 0}
    assert pools["usage.ipynb"] == {"pool_size": 1} and pools["default"] == {"pool_size": 0}
    assert cfg.VoilaKernelManager.fill_delay == 3.0
    assert cfg.MappingKernelManager.cull_idle_timeout == 900 and cfg.MappingKernelManager.cull_connected is False
    assert cfg.VoilaConfiguration.template == serve.TEMPLATE and cfg.VoilaConfiguration.allow_template_override == "NO"
    assert os.environ["JUPYTER_PATH"].split(os.pathsep)[0] == str(serve.TEMPLATE_ROOT)
    assert (serve.TEMPLATE_ROOT / "voila" / "templates" / serve.TEMPLATE / "index.html.j2").is_file()
    allowed = cfg.MappingKernelManager.allowed_message_types
    assert "comm_msg" in allowed and "execute_request" not in allowed  # browsers send widget messages, no code
    monkeypatch.setenv(serve.POOL_ENV, "0")
    assert "preheat_kernel" not in PyFileConfigLoader("voila.py", path=folder).load_config().VoilaConfiguration


def test_pool_and_idle_settings_are_checked(monkeypatch):
    apps = ["index", "ops", "price_monitor"]
    assert serve.pool_sizes("1", apps) == {"index": 1, "ops": 1, "price_monitor": 1}
    assert serve.pool_sizes("price_monitor=3, index.ipynb=2", apps) == {"index": 2, "ops": 0, "price_monitor": 3}
    assert serve.pool_sizes("0", apps) == {"index": 0, "ops": 0, "price_monitor": 0}
    monkeypatch.delenv(serve.POOL_ENV, raising=False)
    default = serve.pool_sizes()
    assert set(default) == {p.stem for p in (config.PROJ_ROOT / "notebooks" / "apps").glob("*.ipynb")}
    assert {app for app, n in default.items() if n} == {"index", "price_monitor", "alerts", "forecasts", "elasticity"}
    monkeypatch.setenv(serve.POOL_ENV, " ")  # set but empty (e.g. a compose passthrough): the default
    assert serve.pool_sizes() == default
    for bad, says in (("pricemonitor=2", "no app named 'pricemonitor'"), ("-1", "whole number"), ("x", "whole number"),
                      ("ops=1.5", "whole number"), ("100", "whole number"), ("1,2", "one size for every app")):
        with pytest.raises(config.ConfigError, match=says) as err:
            serve.pool_sizes(bad, apps)
        assert serve.POOL_ENV in str(err.value)
    for bad in ("0", "0.5", "soon"):  # under a minute would round the culler's timeout to nothing
        monkeypatch.setenv(serve.IDLE_ENV, bad)
        with pytest.raises(config.ConfigError, match=serve.IDLE_ENV):
            serve.idle_minutes()
    monkeypatch.setenv(serve.IDLE_ENV, "2.5")
    assert serve.idle_minutes() == 2.5
    monkeypatch.delenv(serve.REFILL_ENV, raising=False)
    assert serve.refill_seconds() == serve.DEFAULT_REFILL_SECONDS
    monkeypatch.setenv(serve.REFILL_ENV, "5")
    assert serve.refill_seconds() == 5.0
    for bad in ("-1", "601", "later"):
        monkeypatch.setenv(serve.REFILL_ENV, bad)
        with pytest.raises(config.ConfigError, match=serve.REFILL_ENV):
            serve.refill_seconds()


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


def test_a_warm_kernel_reaches_its_server_on_loopback(monkeypatch):
    for ip, host in (("", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("10.1.2.3", "10.1.2.3"),
                     ("::1", "[::1]")):
        monkeypatch.setenv("VOILA_APP_IP", ip)
        monkeypatch.setenv("VOILA_APP_PORT", "9000")
        monkeypatch.delenv("VOILA_WS_BASE_URL", raising=False)
        monkeypatch.setenv("VOILA_SERVER_URL", "/")
        assert session._server_url() == f"ws://{host}:9000/"
    assert session.query_proof("k-1") != session.query_proof("k-2") and len(session.query_proof("k-1")) == 64


@pytest.mark.parametrize("title, notebook", [a[:2] for a in landing.APPS], ids=[a[1] for a in landing.APPS])
def test_every_landing_app_is_listed_and_its_notebook_is_stored_clean(title, notebook):
    """The landing page links the app, and its notebook is kept without outputs (Voila runs it fresh)."""
    assert f'data-app="{notebook.removesuffix(".ipynb")}"' in landing.landing_html(None)
    code = app_notebook_code(notebook)
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code), notebook
