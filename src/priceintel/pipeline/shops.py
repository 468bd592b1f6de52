"""The shops of the `priceintel demo` and `priceintel scrape` commands: the demo world sized by env.yaml, its
storefronts served by a detached background process (found again through `<data>/demo/storefronts.json`),
and a one-off scrape of the storefronts or of given shops, written with its summary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import yaml

from priceintel import PriceIntelError, config
from priceintel.items import safe_frame


def demo_env() -> dict:
    """The pipeline settings of env.yaml (demo world size, seed and first day)."""
    return yaml.safe_load((config.PROJ_ROOT / "env.yaml").read_text())


def world_dir() -> Path:
    """The default demo world: under config.data_dir(), where the storefront registry lives too."""
    return config.demo_dir() / "world"


def registry() -> Path:
    """The registry of the background storefronts (urls, pid)."""
    return config.demo_dir() / "storefronts.json"


def world_params(env: dict, products: int | None = None, days: int | None = None) -> dict:
    """generate_world arguments from env (products and days overridable)."""
    return dict(
        n_products=products or int(env["n_products"]),
        n_days=days or int(env["days"]),
        seed=int(env["seed"]),
        start=date.fromisoformat(str(env["world_start"])),
    )


def demo(action: str, products: int | None = None, days: int | None = None, log: Callable[[str], None] = print) -> None:
    """`priceintel demo init | serve | up | down`: make the world, serve it (blocks), serve it in the background,
    stop the background storefronts."""
    from priceintel import demo as demo_world

    env = demo_env()
    wdir = world_dir()
    params = world_params(env, products, days)
    if action in ("init", "up"):
        world = demo_world.ensure_world(wdir, **params)
        log(f"demo world: {len(world.products)} products, {world.params['n_days']} days -> {wdir}")
    if action == "serve":
        demo_world.ensure_world(wdir, **params)
        demo_world.serve(wdir, registry=registry())
        return
    if action == "up":
        urls = start_background(wdir)
        for retailer, url in urls.items():
            log(f"storefront {retailer:8s} {url}")
    if action == "down":
        log("storefronts stopped" if stop_background() else "no storefronts running")


def _live_urls(wdir: Path, reg: Path) -> dict | None:
    """The urls of live storefronts listed in the registry that serve this world, else None."""
    from priceintel.demo import storefronts as demo_world

    urls, handle = demo_world.ensure_storefronts(wdir, registry=reg)
    if handle is None:
        return urls
    handle.stop()
    return None


def _exit_error(log: Path, start: int) -> str:
    """The server's own error from its log (written since offset start): the last error line, else the last line."""
    with open(log, "rb") as fh:
        fh.seek(start)
        lines = [ln for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
    return next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else "")


def start_background(wdir: Path, timeout: float = 30.0) -> dict:
    """Start `priceintel demo serve` detached unless live storefronts already serve this world; their urls."""
    from priceintel.demo import storefronts as demo_world

    reg = registry()
    if reg.exists() and (urls := _live_urls(wdir, reg)) is not None:
        return urls
    log = config.demo_dir() / "storefronts.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    start = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "priceintel.cli", "demo", "serve"],
            stdout=fh,
            stderr=fh,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:  # the server gave up (e.g. a port held by another checkout's shops)
            raise PriceIntelError(
                f"demo storefronts exited at start: {_exit_error(log, start).removeprefix('error: ')} "
                f"(ports {demo_world.DEFAULT_PORTS}; `priceintel demo down` stops this checkout's "
                f"shops; see {log})"
            )
        if reg.exists() and (urls := _live_urls(wdir, reg)) is not None:
            return urls
        time.sleep(0.3)
    raise PriceIntelError(f"demo storefronts did not start within {timeout:.0f}s; see {log}")


def stop_background() -> bool:
    """Stop the registered background storefronts (SIGTERM) and drop the registry; False when none is registered."""
    reg = registry()
    if not reg.exists():
        return False
    pid = json.loads(reg.read_text()).get("pid")
    if pid:
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass
    reg.unlink(missing_ok=True)
    return True


# ------------------------------------------------------------------------------------ scrape


def shop_urls(specs: list[str]) -> dict[str, str]:
    """{retailer: base url} from RETAILER=http(s)://base arguments."""
    urls = {}
    for spec in specs:
        name, sep, base = spec.partition("=")
        if not sep or not base.startswith(("http://", "https://")):
            raise PriceIntelError(f"--url wants RETAILER=http(s)://base, got {spec!r}")
        urls[name] = base
    return urls


def _write(out: Path, offers, errors) -> dict:
    """offers.parquet, errors.csv and summary.json in out; the summary."""
    from priceintel.scrape.crawl import summarise

    out.mkdir(parents=True, exist_ok=True)
    offers.to_parquet(out / "offers.parquet", index=False)
    safe_frame(errors).to_csv(out / "errors.csv", index=False)  # scraped text never runs as a formula
    summary = summarise(offers, errors)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def scrape(
    url_specs: list[str] | None = None,
    retailers: list[str] | None = None,
    item_ids: list[str] | None = None,
    limit: int | None = None,
    day: str | None = None,
    out: str | None = None,
    render: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """`priceintel scrape`: scrape shops once (the demo storefronts unless url_specs name shops, on demo day `day`),
    write offers, errors and the summary to out (default interim/scrape) and log the summary."""
    from priceintel import demo as demo_world
    from priceintel.scrape import Fetcher, RawArchive
    from priceintel.scrape.crawl import scrape_shops, set_demo_date

    handle = None
    if url_specs:
        urls = shop_urls(url_specs)
    else:
        wdir = world_dir()
        demo_world.ensure_world(wdir, **world_params(demo_env()))
        urls, handle = demo_world.ensure_storefronts(wdir, registry=registry())
    retailers = retailers or list(urls)
    folder = Path(out) if out else config.interim_dir() / "scrape"
    try:
        with Fetcher(archive=RawArchive(config.raw_dir()), render=render) as fetcher:
            if day and not url_specs:
                for r in retailers:
                    if r in urls:
                        set_demo_date(urls[r], date.fromisoformat(day), fetcher)
            offers, errors = scrape_shops(
                urls, fetcher, retailers=retailers, item_ids=item_ids, limit=limit, progress=progress
            )
    finally:
        if handle is not None:
            handle.stop()
    summary = _write(folder, offers, errors)
    kinds = ", ".join(f"{k} {v}" for k, v in summary["errors_by_kind"].items()) or "none"
    log(
        f"pages {summary['pages']}  products {summary['products']}  prices {summary['prices']}  "
        f"errors {summary['errors']} ({kinds})"
    )
    log(f"offers -> {folder / 'offers.parquet'}; errors -> {folder / 'errors.csv'}")
    return summary
