"""Scraping split by shop: one shard per shop of a run, merged by the scrape task.

`scrape_shops` is the scrape of some or all of a run's shops; the unsharded scrape task calls it for every shop.
A shard (`priceintel task scrape --shard SHOP --run-key KEY`: one Airflow task per shop, `schedule.airflow_dag`)
scrapes one shop and writes its frames to `<data_dir>/shards/<run>/<shop>/` (offers, errors and fetches as
parquet, then `shard.json`), into a temporary folder renamed into place, so a re-run replaces its shard whole
and a reader never sees half of one. A shard that raises leaves a shard whose `shard.json` says `failed` and
why. The scrape task given the run key (`priceintel task scrape --run-key KEY [--shops A,B]`) fetches nothing
for those shops: it merges their shards into the task's products, the same rows in the same order as an
unsharded scrape (`canonical`), and fails with one line naming every missing or failed shard and its folder.

The shops of a run (`run_shops`): the demo source's `retailers`; the live source's shops of today's watch
targets (`live.live_shops`). The DAG lists them when it is exported and passes them to the merge (`--shops`);
a shop of the run without a shard there (a shop watched since the export, a retailer added to env.yaml) is
scraped by the merge itself, with a warning, rather than dropped. Shard runs older than `KEEP_DAYS` days are
removed by the next merge.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy.exc

from priceintel import PriceIntelError, config, storage

if TYPE_CHECKING:
    from priceintel.pipeline.stages import RunParams

log = logging.getLogger(__name__)

#: the run key and the shops of a merge, for the scrape task's notebook (set by `merging`)
RUN_ENV, SHOPS_ENV = "PRICEINTEL_SHARD_RUN", "PRICEINTEL_SHARD_SHOPS"
FRAMES = ("offers", "errors", "fetches")
MANIFEST = "shard.json"
#: shard runs older than this are removed by a merge
KEEP_DAYS = 14
#: the settings a shard was scraped with, which its merge must share (the live source uses none of the others)
SETTINGS = ("source", "days", "world_start", "product_limit")
_SHOP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
Frames = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


class ShardError(PriceIntelError):
    """A shard cannot be written or merged: a bad shop name or run key, a missing or failed shard."""


# ------------------------------------------------------------------------------------ names


def run_dir(data_dir: str | Path, run_key: str) -> Path:
    """`<data_dir>/shards/<run>`: the run key as a folder name (other characters than letters, digits, `._-`
    become `_`, and a short hash of the key keeps two such keys apart)."""
    key = str(run_key or "").strip()
    if not key or len(key) > 250:
        raise ShardError(f"run key {run_key!r} must be 1 to 250 characters (Airflow passes its run_id)")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", key)
    if safe != key or safe.startswith("."):
        safe = f"{safe.lstrip('.')[:200]}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
    return Path(data_dir) / "shards" / safe


def check_shop(shop: str) -> str:
    """The shop name, when it can name a shard folder (letters, digits, `._-`, at most 100); else ShardError."""
    if not _SHOP_RE.match(str(shop)):
        raise ShardError(f"shop {shop!r} is not a shop name (letters, digits, '.', '_', '-'; at most 100)")
    return str(shop)


def shard_dir(data_dir: str | Path, run_key: str, shop: str) -> Path:
    """`<data_dir>/shards/<run>/<shop>`: where the shard of one shop of a run is kept."""
    return run_dir(data_dir, run_key) / check_shop(shop)


def run_shops(params: RunParams, engine=None) -> list[str]:
    """The shops of a run: the demo source's known `retailers`; the live source's shops of today's targets."""
    if params.source != "live":
        return list(params.retailers)
    from priceintel.db import engine as db_engine
    from priceintel.pipeline import live

    return live.live_shops(engine or db_engine.get_engine())


def export_shops(env: dict) -> list[str]:
    """The run's shops when a DAG is exported (the live source's from the database, in the run's tenant)."""
    from priceintel.pipeline.run import in_tenant

    params = params_of(env)
    if params.source != "live":
        return run_shops(params)
    try:
        with in_tenant(env):
            return run_shops(params)
    except (PriceIntelError, sqlalchemy.exc.SQLAlchemyError) as exc:
        raise ShardError(
            f"cannot list the live source's shops for the DAG's scrape shards: {config.error_line(exc)} "
            "(start the database, or export with --no-shards)"
        ) from None


def params_of(env: dict) -> RunParams:
    """The scrape task's parameters from a pipeline env (and the world's, which a shard makes sure of)."""
    from priceintel.pipeline import stages

    keys = ("data_dir", "seed", "n_products", "days", "world_start", "retailers", "product_limit", "source")
    return stages.validate_params(**{k: env[k] for k in keys})


def _settings(params: RunParams) -> dict:
    return {k: str(getattr(params, k)) for k in (SETTINGS if params.source != "live" else SETTINGS[:1])}


# ------------------------------------------------------------------------------------ scraping


def canonical(offers: pd.DataFrame, errors: pd.DataFrame, fetches: pd.DataFrame) -> Frames:
    """The scrape task's products in a deterministic order (day, shop, page; a stable sort, so pages fetched
    twice keep their order): the same frames whether the shops were scraped together or in shards."""

    def order(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
        by = [k for k in keys if k in df.columns]
        return df.sort_values(by, kind="stable", na_position="last").reset_index(drop=True) if by else df

    return (
        order(offers, ("ds", "retailer", "url")),
        order(errors, ("ds", "retailer", "url", "kind", "message")),
        order(fetches, ("retailer", "url")),
    )


def unknown_retailer_errors(params: RunParams) -> pd.DataFrame:
    """One error row per retailer of the parameters that has no adapter (it is skipped)."""
    rows = [
        {"url": None, "retailer": r, "kind": "unknown_retailer", "ds": None,
         "message": f"retailer {r!r} has no adapter; skipped (parameter retailers)"}
        for r in params.unknown_retailers
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["url", "retailer", "kind", "ds", "message"])


def scrape_shops(
    params: RunParams, world_dir: str | Path | None = None, shops: Sequence[str] | None = None, progress: bool = False
) -> Frames:
    """(offers, errors, fetches) of these shops of the run (None: every shop, with an error row per unknown
    retailer), in `canonical` order. Demo source: the world's storefronts (reusing running ones), every page of
    every day; live source: today's page of each watch and matched listing (`live.live_scrape`)."""
    from priceintel.pipeline import live
    from priceintel.scrape import RawArchive

    started = datetime.now(UTC).isoformat()
    if params.source == "live":
        from priceintel.db import engine as db_engine

        offers, errors, fetches = live.live_scrape(db_engine.get_engine(), params.data_dir, only=shops)
    else:
        wanted = params.retailers if shops is None else [s for s in shops if s in params.retailers]
        offers, errors = _scrape_demo(params, world_dir, wanted, progress)
        if shops is None and params.unknown_retailers:
            errors = pd.concat([errors, unknown_retailer_errors(params)], ignore_index=True)
        fetches = live.fetch_frame()
    return canonical(offers, RawArchive(params.data_dir / "raw").with_outages(errors, started), fetches)


def _scrape_demo(
    params: RunParams, world_dir: str | Path | None, shops: Sequence[str], progress: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every page of every day of these demo shops. The running storefronts share one clock: a scrape holds
    their lock, so shards of one machine take their turns (storefronts started here have a clock of their own)."""
    from priceintel.demo import storefronts
    from priceintel.pipeline import stages
    from priceintel.scrape import Fetcher, RawArchive, scrape_demo

    world_dir = Path(world_dir) if world_dir is not None else stages.world_stage(params)
    urls, handle = storefronts.ensure_storefronts(world_dir)
    try:
        with storage.file_lock(config.demo_dir() / "storefronts.lock") if handle is None else nullcontext():
            with Fetcher(archive=RawArchive(params.data_dir / "raw")) as fetcher:
                return scrape_demo(
                    {r: u for r, u in urls.items() if r in shops},
                    params.run_days,
                    fetcher,
                    product_limit=params.product_limit or None,
                    progress=progress,
                )
    finally:
        if handle is not None:
            handle.stop()


# ------------------------------------------------------------------------------------ shards


def scrape_shard(params: RunParams, shop: str, run_key: str, world_dir: str | Path | None = None) -> Path:
    """Scrape one shop of the run into its shard folder (replaced whole); returns the folder. A scrape that
    raises leaves a `failed` shard naming the error, and raises ShardError naming the shop and the folder."""
    target = shard_dir(params.data_dir, run_key, shop)
    manifest: dict[str, Any] = {"shop": shop, "run_key": run_key, "settings": _settings(params)}
    manifest["started_at"] = datetime.now(UTC).isoformat()
    try:
        frames = scrape_shops(params, world_dir, shops=[shop])
    except Exception as exc:  # noqa: BLE001 - recorded in the shard for its merge, then raised on one line
        error = config.redact(config.error_line(exc))
        _write(target, {}, {**manifest, "status": "failed", "error": error})
        raise ShardError(f"shard {shop} of run {run_key!r} failed: {error} (recorded in {target})") from exc
    rows = {name: len(df) for name, df in zip(FRAMES, frames)}
    note = None
    if params.source != "live" and shop not in params.retailers:
        note = f"{shop} is not one of this run's retailers ({', '.join(params.retailers)}): nothing scraped"
    elif params.source == "live" and rows["fetches"] + rows["errors"] == 0:
        note = f"{shop} has no page to fetch today (no active watch or matched listing)"
    if note:
        _warn(f"shard {shop}: {note}")
    done = {**manifest, "status": "ok", "rows": rows, "note": note, "finished_at": datetime.now(UTC).isoformat()}
    _write(target, dict(zip(FRAMES, frames)), done)
    return target


def _write(target: Path, frames: dict[str, pd.DataFrame], manifest: dict) -> None:
    """Write a shard into a temporary folder beside its place, then rename it into place (the old one, if
    any, is renamed away first and removed after): a reader sees the old shard, none, or the new one whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    old = None
    try:
        for name, df in frames.items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def read_shard(params: RunParams, run_key: str, shop: str) -> Frames:
    """The frames of one shop's shard; ShardError naming the shop and the folder when it is missing, failed,
    unreadable or was scraped with other settings."""
    where = shard_dir(params.data_dir, run_key, shop)
    try:
        manifest = json.loads((where / MANIFEST).read_text())
    except FileNotFoundError:
        raise ShardError(f"{shop}: missing (no {where / MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise ShardError(f"{shop}: unreadable {where / MANIFEST}: {exc}") from None
    if manifest.get("status") != "ok":
        raise ShardError(f"{shop}: failed ({manifest.get('error') or 'no error recorded'}) in {where}")
    if manifest.get("settings") != _settings(params):
        raise ShardError(f"{shop}: scraped with {manifest.get('settings')}, not {_settings(params)}, in {where}")
    try:
        frames = tuple(pd.read_parquet(where / f"{name}.parquet") for name in FRAMES)
    except (OSError, ValueError) as exc:
        raise ShardError(f"{shop}: unreadable shard in {where}: {exc}") from None
    return frames[0], frames[1], frames[2]


def merge(
    params: RunParams, run_key: str, shops: Sequence[str] | None = None, world_dir: str | Path | None = None
) -> Frames:
    """The scrape task's products from the shards of run `run_key`: one per shop of `shops` (default: the run's
    shops, `run_shops`), each required; a shop of the run without a shard among them is scraped here (with a
    warning). The same rows in the same order as an unsharded scrape (`canonical`)."""
    expected = list(dict.fromkeys(shops if shops is not None else run_shops(params)))
    parts: list[Frames] = []
    problems: list[str] = []
    for shop in expected:
        try:
            parts.append(read_shard(params, run_key, shop))
        except ShardError as exc:
            problems.append(str(exc))
    if problems:
        raise ShardError(
            f"scrape shards of run {run_key!r} missing or failed ({len(problems)} of {len(expected)}): "
            + "; ".join(problems)
            + f". Re-run them: priceintel task scrape --shard SHOP --run-key {run_key!r}"
        )
    extra = [s for s in (run_shops(params) if shops is not None else []) if s not in expected]
    if extra:
        _warn(f"shop(s) {', '.join(extra)} of this run have no shard (added since the DAG was exported?): "
              "scraped by the merge; re-export the DAG to give them shards")  # fmt: skip
        parts.append(scrape_shops(params, world_dir, shops=extra))
    if not parts:  # a run without shops: what the unsharded scrape says about it
        return scrape_shops(params, world_dir)
    offers, errors, fetches = (_concat([p[i] for p in parts]) for i in range(len(FRAMES)))
    outage = errors["kind"] == "archive_unavailable"  # each shard reads the shared spool's outage log: keep one
    if outage.sum() > 1:
        errors = pd.concat([errors[~outage], errors[outage].tail(1)], ignore_index=True)
    if params.source != "live" and params.unknown_retailers:  # as the unsharded scrape adds them
        errors = pd.concat([errors, unknown_retailer_errors(params)], ignore_index=True)
    prune(params.data_dir, keep=run_dir(params.data_dir, run_key))
    return canonical(offers, errors, fetches)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames of one kind one under the other (empty ones left out, so they change no column's type)."""
    full = [f for f in frames if len(f)]
    if not full:
        return frames[0].iloc[:0].reset_index(drop=True)
    return pd.concat(full, ignore_index=True) if len(full) > 1 else full[0].reset_index(drop=True)


def prune(data_dir: str | Path, keep: Path | None = None, days: float = KEEP_DAYS) -> list[Path]:
    """Remove the shard runs last written more than `days` ago (never `keep`); returns those removed."""
    root, cutoff, removed = Path(data_dir) / "shards", time.time() - days * 86400, []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.is_dir() and path != keep and path.stat().st_mtime < cutoff:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _warn(message: str) -> None:
    log.warning(message)
    print(f"warning: {message}", flush=True)


# ------------------------------------------------------------------------------------ the task


@contextmanager
def merging(run_key: str, shops: Sequence[str] | None = None) -> Iterator[None]:
    """Within the block, the scrape task (its notebook reads the environment) merges the shards of run_key."""
    run_dir(".", run_key)  # a bad key fails here, not in the notebook
    with config.environment({RUN_ENV: run_key, SHOPS_ENV: None if shops is None else ",".join(shops)}):
        yield


def requested() -> tuple[str, list[str] | None] | None:
    """(run key, shops or None) when this process is a merging scrape task (`merging`), else None."""
    key = os.environ.get(RUN_ENV, "").strip()
    if not key:
        return None
    shops = os.environ.get(SHOPS_ENV)
    return key, None if shops is None else [s for s in shops.split(",") if s.strip()]


def split_shops(value: str | None) -> list[str] | None:
    """`--shops a,b` as a list (None when not given)."""
    return None if value is None else [s.strip() for s in value.split(",") if s.strip()]


def cli_task(env: dict, name: str, shard: str | None, run_key: str | None, shops: str | None) -> str:
    """`priceintel task NAME [--shard SHOP] [--run-key KEY] [--shops A,B]`: one shard of the scrape task, the
    scrape task merging a run's shards, or (none of them) the task itself; returns the line to print."""
    from priceintel.pipeline import schedule
    from priceintel.pipeline.run import in_tenant

    if run_key is not None:
        run_dir(".", run_key)  # an empty key (an unset variable) is an error, never an unsharded scrape
    elif shard is not None or shops is not None:
        raise ShardError("--shard and --shops need --run-key KEY (the run the shards belong to)")
    if run_key is not None and name != "scrape":
        raise ShardError(f"--shard, --run-key and --shops are options of the scrape task, not of {name!r}")
    if shard is not None and shops is not None:
        raise ShardError("--shops lists the shards the merge expects: give it without --shard")
    if shard is not None and run_key is not None:
        params = params_of(env)
        with in_tenant(env) if params.source == "live" else nullcontext():
            where = scrape_shard(params, shard, run_key)
        rows = json.loads((where / MANIFEST).read_text())["rows"]
        return f"shard {shard} of run {run_key}: {rows['offers']:,} pages, {rows['errors']:,} errors in {where}"
    with merging(run_key, split_shops(shops)) if run_key is not None else nullcontext():
        schedule.run_task(env, name)
    return f"task {name} done" + (f" (shards of run {run_key} merged)" if run_key is not None else "")
