"""The scrape task split by shop (`pipeline.shards`): shards of a demo run on the real demo storefronts merge to
exactly the unsharded scrape; a shard of the live source is its shop's watches; a missing, failed or mismatched
shard is one clear error naming the shop and its folder; a re-run replaces a shard whole; the Airflow export gets
a shard task per shop upstream of the merging `scrape`, with the run id quoted safely."""

from __future__ import annotations

import ast
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from priceintel import cli, config
from priceintel.demo import storefronts as demo_storefronts
from priceintel.demo.world import RETAILERS
from priceintel.ingest import import_catalog, import_watches
from priceintel.pipeline import schedule, shards
from priceintel.pipeline import stages as pipeline

KEY = "manual__2026-07-01T06:00:00+00:00"
SETS = {
    "seed": 3,
    "n_products": 3,
    "days": 2,
    "world_start": "2026-07-01",
    "product_limit": 2,
    "retailers": "amazon,walmart,nosuchshop",
}


def _args(data: Path, **extra) -> list[str]:
    """--env-file env.test.yaml and the --set pairs of a small demo run in `data`."""
    out = ["--env-file", str(config.PROJ_ROOT / "env.test.yaml"), "--set", f"data_dir={data}"]
    for k, v in {**SETS, **extra}.items():
        out += ["--set", f"{k}={v}"]
    return out


def _same(a: tuple, b: tuple) -> None:
    """The scrape products a and b are equal but for the fetch times."""
    for name, x, y in zip(shards.FRAMES, a, b):
        drop = [c for c in ("fetched_at",) if c in x.columns]
        pd.testing.assert_frame_equal(x.drop(columns=drop), y.drop(columns=drop), obj=name)


@pytest.fixture()
def served(tmp_path, monkeypatch):
    """A small demo run's params and world, served by `demo serve`'s storefronts (the registry's shared clock),
    as `priceintel demo up` leaves them."""
    data = tmp_path / "data"
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(data))  # the storefront registry: data/demo/storefronts.json
    params = pipeline.validate_params(data_dir=data, **SETS)
    world_dir = pipeline.world_stage(params)
    stop = threading.Event()
    server = threading.Thread(
        target=demo_storefronts.serve,
        args=(world_dir, {r: 0 for r in RETAILERS}),
        kwargs={"stop_event": stop},
        daemon=True,
    )
    server.start()
    registry = data / "demo" / "storefronts.json"
    for _ in range(200):
        if registry.exists():
            break
        time.sleep(0.05)
    assert demo_storefronts.ensure_storefronts(world_dir)[1] is None  # the running ones are reused
    yield params, world_dir
    stop.set()
    server.join(10)


def test_demo_shards_merge_to_the_unsharded_scrape(served, capsys):
    params, world_dir = served
    whole = pipeline.scrape_stage(params, world_dir)
    assert set(whole[0]["retailer"]) == {"amazon", "walmart"} and len(whole[0]) == 2 * 2 * 2
    assert list(whole[1]["kind"]) == ["unknown_retailer"]
    assert pipeline.scrape_stage(params, world_dir)[0]["url"].tolist() == whole[0]["url"].tolist()  # deterministic

    data = params.data_dir
    for shop in ("amazon", "walmart"):
        assert cli.main(["task", "scrape", "--shard", shop, "--run-key", KEY, *_args(data)]) == 0
        assert f"shard {shop} of run {KEY}: 4 pages, 0 errors" in capsys.readouterr().out
    run = shards.run_dir(data, KEY)
    assert run.parent == data / "shards" and ":" not in run.name and "+" not in run.name
    manifest = json.loads((run / "amazon" / shards.MANIFEST).read_text())
    assert manifest["status"] == "ok" and manifest["rows"] == {"offers": 4, "errors": 0, "fetches": 0}
    with shards.merging(KEY):
        merged = pipeline.scrape_stage(params, world_dir)
    assert shards.RUN_ENV not in os.environ
    _same(merged, whole)

    # a shard re-run replaces its shard whole, and leaves no temporary folder
    assert cli.main(["task", "scrape", "--shard", "amazon", "--run-key", KEY, *_args(data)]) == 0
    assert json.loads((run / "amazon" / shards.MANIFEST).read_text())["started_at"] != manifest["started_at"]
    assert sorted(p.name for p in run.iterdir()) == ["amazon", "walmart"]

    # the DAG was exported with amazon alone: walmart (added since) is scraped by the merge, not dropped
    with shards.merging(KEY, ["amazon"]):
        _same(pipeline.scrape_stage(params, world_dir), whole)
    assert "walmart of this run have no shard" in capsys.readouterr().out

    # a shard of a shop that is not one of the run's: an empty shard saying so
    assert cli.main(["task", "scrape", "--shard", "target", "--run-key", KEY, *_args(data)]) == 0
    assert "target is not one of this run's retailers" in capsys.readouterr().out
    with shards.merging(KEY, ["amazon", "walmart", "target"]):
        _same(pipeline.scrape_stage(params, world_dir), whole)


def test_a_missing_failed_or_mismatched_shard_is_one_clear_error(served, monkeypatch, capsys):
    params, world_dir = served
    data = params.data_dir
    assert cli.main(["task", "scrape", "--shard", "amazon", "--run-key", KEY, *_args(data)]) == 0
    walmart = shards.shard_dir(data, KEY, "walmart")
    with shards.merging(KEY), pytest.raises(shards.ShardError) as err:
        pipeline.scrape_stage(params, world_dir)
    assert "(1 of 2)" in str(err.value) and f"walmart: missing (no {walmart / shards.MANIFEST})" in str(err.value)

    def down(*a, **k):
        raise ConnectionError("walmart storefront unreachable")

    monkeypatch.setattr(shards, "scrape_shops", down)
    capsys.readouterr()
    assert cli.main(["task", "scrape", "--shard", "walmart", "--run-key", KEY, *_args(data)]) == 2
    assert capsys.readouterr().err == (
        f"error: shard walmart of run {KEY!r} failed: walmart storefront unreachable (recorded in {walmart})\n"
    )
    assert json.loads((walmart / shards.MANIFEST).read_text())["status"] == "failed"
    with pytest.raises(shards.ShardError, match=f"walmart: failed \\(walmart storefront unreachable\\) in {walmart}"):
        shards.merge(params, KEY, world_dir=world_dir)
    other = replace(params, product_limit=1)
    with pytest.raises(shards.ShardError, match="amazon: scraped with .*'product_limit': '2'.* not .*'1'"):
        shards.merge(other, KEY, ["amazon"])
    (shards.shard_dir(data, KEY, "amazon") / "offers.parquet").write_text("not parquet")
    with pytest.raises(shards.ShardError, match="amazon: unreadable shard in"):
        shards.merge(params, KEY, ["amazon"])
    (shards.shard_dir(data, KEY, "amazon") / shards.MANIFEST).write_text("{")
    with pytest.raises(shards.ShardError, match="amazon: unreadable .*shard.json"):
        shards.merge(params, KEY, ["amazon"])
    # the scrape task itself, from the command line: one line, no traceback
    assert cli.main(["task", "scrape", "--shard", "a/b", "--run-key", KEY, *_args(data)]) == 2
    assert "error: shop 'a/b' is not a shop name" in capsys.readouterr().err


def test_shard_names_keys_and_the_task_command(tmp_path, monkeypatch, capsys):
    assert shards.run_dir(tmp_path, "scheduled__2026-01-01").name == "scheduled__2026-01-01"
    odd = [shards.run_dir(tmp_path, k).name for k in ("a:b", "a+b", "../x", ".hidden")]
    assert len(set(odd)) == 4 and all("/" not in n and not n.startswith(".") for n in odd)
    for bad in ("", " ", "x" * 251):
        with pytest.raises(shards.ShardError, match="run key"):
            shards.run_dir(tmp_path, bad)
    assert shards.split_shops(" a, b,,") == ["a", "b"] and shards.split_shops(None) is None

    seen = {}
    monkeypatch.setattr(
        schedule,
        "run_task",
        lambda env, name: seen.update(
            name=name, key=os.environ.get(shards.RUN_ENV), shops=os.environ.get(shards.SHOPS_ENV)
        ),
    )
    assert cli.main(["task", "scrape", "--run-key", KEY, "--shops", "amazon,walmart", *_args(tmp_path)]) == 0
    assert seen == {"name": "scrape", "key": KEY, "shops": "amazon,walmart"}
    assert "task scrape done (shards of run" in capsys.readouterr().out
    assert shards.RUN_ENV not in os.environ and shards.SHOPS_ENV not in os.environ
    assert cli.main(["task", "clean", *_args(tmp_path)]) == 0 and seen["key"] is None
    for argv, message in (
        (["clean", "--run-key", KEY], "options of the scrape task, not of 'clean'"),
        (["scrape", "--shops", "a"], "need --run-key"),
        (["scrape", "--shard", "a", "--shops", "a", "--run-key", KEY], "without --shard"),
        (["scrape", "--run-key", ""], "run key '' must be 1 to 250 characters"),
        (["scrape", "--shard", "", "--run-key", KEY], "shop '' is not a shop name"),
    ):
        assert cli.main(["task", *argv, *_args(tmp_path)]) == 2
        assert message in capsys.readouterr().err, argv

    # a live DAG's shops come from the database: unreachable, the export says what to do
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    with pytest.raises(shards.ShardError, match="cannot list the live source's shops .* export with --no-shards"):
        schedule.airflow_dag(env=pipeline_env_of(tmp_path, source="live"))
    assert "run_env" not in schedule.airflow_dag(env=pipeline_env_of(tmp_path, source="live"), shards=False)

    old, new = tmp_path / "shards" / "old-run", tmp_path / "shards" / "new-run"
    for path in (old, new):
        path.mkdir(parents=True)
    os.utime(old, (time.time() - 20 * 86400,) * 2)
    assert shards.prune(tmp_path) == [old] and new.exists()


def _dag(path: Path) -> tuple[dict, set, dict]:
    """(task id -> BashOperator keywords, edges, module-level assignments) of an exported DAG file."""
    tree = ast.parse(path.read_text())
    tasks, edges, assigned = {}, set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "BashOperator":
            kw = {
                k.arg: (k.value.id if isinstance(k.value, ast.Name) else ast.literal_eval(k.value))
                for k in node.keywords
            }
            tasks[kw["task_id"]] = kw
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
            edges.add((node.left.id, node.right.id))
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "run_env":
            assigned["run_env"] = ast.literal_eval(node.value)
    return tasks, edges, assigned


def test_the_airflow_dag_has_a_shard_task_per_shop(tmp_path):
    out = tmp_path / "dag.py"
    assert cli.main(["schedule", "--export-airflow", str(out), *_args(tmp_path)]) == 0
    tasks, edges, assigned = _dag(out)
    deps = schedule.pipeline_tasks()
    assert list(tasks) == [
        "world",
        "scrape_amazon",
        "scrape_walmart",
        "scrape",
        *[t for t in deps if t not in ("world", "scrape")],
    ]
    assert edges == {(u, t) for t, ups in deps.items() for u in ups} | {
        ("world", "scrape_amazon"),
        ("world", "scrape_walmart"),
        ("scrape_amazon", "scrape"),
        ("scrape_walmart", "scrape"),
    }
    assert assigned["run_env"] == {schedule.RUN_KEY_ENV: "{{ run_id }}"}
    for task_id, shop in (("scrape_amazon", "amazon"), ("scrape_walmart", "walmart")):
        kw = tasks[task_id]
        assert f'task scrape --shard {shop} --run-key="$PRICEINTEL_RUN_KEY" --env-file' in kw["bash_command"]
        assert kw["env"] == "run_env" and kw["append_env"] is True
    assert 'task scrape --shops amazon,walmart --run-key="$PRICEINTEL_RUN_KEY"' in tasks["scrape"]["bash_command"]
    assert "env" not in tasks["clean"] and "run_key" not in tasks["clean"]["bash_command"]

    # the run id reaches the command as one argument, whatever it holds
    stub = tmp_path / "priceintel"
    stub.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    exe = shlex.quote(str(Path(sys.executable).parent / "priceintel"))
    cmd = tasks["scrape_amazon"]["bash_command"].replace(exe, shlex.quote(str(stub)))
    hostile = "-manual__x'; touch pwned #\"$(touch pwned2)` "  # a leading "-" is no option either
    res = subprocess.run(
        ["bash", "-c", cmd],
        env={**os.environ, schedule.RUN_KEY_ENV: hostile},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    argv = json.loads(res.stdout)
    assert f"--run-key={hostile}" in argv and not list(config.PROJ_ROOT.glob("pwned*"))

    # one shop: no shards unless asked; --no-shards: none; odd shop names make valid, distinct task ids
    one = tmp_path / "one.py"
    assert cli.main(["schedule", "--export-airflow", str(one), *_args(tmp_path, retailers="target")]) == 0
    assert list(_dag(one)[0]) == list(deps) and "run_env" not in one.read_text()
    src = schedule.airflow_dag(env=pipeline_env_of(tmp_path, retailers="target"), shards=True)
    assert "task_id='scrape_target'" in src
    assert cli.main(["schedule", "--export-airflow", str(one), "--no-shards", *_args(tmp_path)]) == 0
    assert list(_dag(one)[0]) == list(deps)
    ids = schedule.shard_task_ids(["zara.com-ar", "zara_com_ar", "Shop.1"])
    assert ids == {
        "zara.com-ar": "scrape_zara_com_ar",
        "zara_com_ar": "scrape_zara_com_ar_2",
        "Shop.1": "scrape_Shop_1",
    }
    src = schedule.airflow_dag(env=pipeline_env_of(tmp_path), shards=["zara.com-ar", "amazon"])
    assert "--shard zara.com-ar" in src and "task_id='scrape_zara_com_ar'" in src and ast.parse(src)
    with pytest.raises(shards.ShardError, match="not a shop name"):
        schedule.shard_task_ids(["a b"])


def pipeline_env_of(data: Path, **extra) -> dict:
    from priceintel.pipeline.run import build_env

    return build_env(str(config.PROJ_ROOT / "env.test.yaml"), {"data_dir": str(data), **SETS, **extra})


def test_live_shards_are_each_shops_watches(fresh_db, demo_world, storefronts, tmp_path, monkeypatch, capsys):
    """A live run's shops are those of its watches; a shard fetches one shop's; a shop watched since the DAG's
    export is fetched by the merge; merged, the same products as the unsharded live scrape."""
    shops = {
        r: {"base_url": u + "/", "adapter": r, "requests_per_second": 100, "concurrency": 2}
        for r, u in storefronts.urls.items()
    }
    (tmp_path / "shops.yaml").write_text(yaml.safe_dump({"shops": shops}))
    monkeypatch.setenv("PRICEINTEL_SHOPS", str(tmp_path / "shops.yaml"))
    cols = ["sku", "name", "brand", "category", "gtin", "mpn", "size", "unit_cost", "map_price"]
    demo_world.products[cols].to_csv(tmp_path / "catalogue.csv", index=False)
    watch = demo_world.listings[["retailer", "item_id", "url"]].merge(demo_world.truth_matches, how="left")
    watch = watch[watch["retailer"].isin(["amazon", "walmart"])].groupby("retailer").head(3)
    watch["url"] = [storefronts.urls[r] + u for r, u in zip(watch["retailer"], watch["url"])]
    watch[["retailer", "url", "sku"]].to_csv(tmp_path / "watch.csv", index=False)
    assert import_catalog(fresh_db, tmp_path / "catalogue.csv").counts["rejected"] == 0
    assert import_watches(fresh_db, tmp_path / "watch.csv").counts["rejected"] == 0

    data = tmp_path / "data"
    params = pipeline.validate_params(
        data_dir=data, days=2, world_start="2026-01-01", retailers="amazon", source="live"
    )
    assert shards.run_shops(params) == ["amazon", "walmart"]
    src = schedule.airflow_dag(env=pipeline_env_of(data, source="live"))
    assert "--shops amazon,walmart" in src and "task_id='scrape_walmart'" in src
    whole = pipeline.scrape_stage(params)
    assert len(whole[2]) == 6 and set(whole[0]["retailer"]) == {"amazon", "walmart"}

    assert (
        cli.main(
            ["task", "scrape", "--shard", "amazon", "--run-key", KEY, *_args(data, source="live", retailers="amazon")]
        )
        == 0
    )
    amazon = shards.read_shard(params, KEY, "amazon")
    assert set(amazon[2]["retailer"]) == {"amazon"} and len(amazon[2]) == 3
    with shards.merging(KEY, ["amazon"]):
        merged = pipeline.scrape_stage(params)  # walmart has no shard: fetched by the merge
    _same(merged, whole)
    assert "walmart of this run have no shard" in capsys.readouterr().out
    shards.scrape_shard(params, "target", KEY)  # no watch of target: an empty shard, saying so
    assert "target has no page to fetch today" in capsys.readouterr().out
    assert json.loads((shards.shard_dir(data, KEY, "target") / shards.MANIFEST).read_text())["rows"]["fetches"] == 0


@pytest.mark.slow
@pytest.mark.e2e
def test_the_scrape_task_given_the_run_key_merges_its_shards(fresh_db, served, capsys):
    """As the Airflow DAG runs them: the world task, a shard task per shop, then the scrape task (Ploomber, its
    notebook in this process) merging them into its products, equal to an unsharded scrape's."""
    params, world_dir = served
    data = params.data_dir
    args = [*_args(data), "--set", f"reports_dir={data.parent / 'reports'}"]
    assert cli.main(["task", "world", *args]) == 0
    for shop in ("amazon", "walmart"):
        assert cli.main(["task", "scrape", "--shard", shop, "--run-key", KEY, *args]) == 0
    assert cli.main(["task", "scrape", "--run-key", KEY, "--shops", "amazon,walmart", *args]) == 0
    assert f"task scrape done (shards of run {KEY} merged)" in capsys.readouterr().out
    whole = pipeline.scrape_stage(params, world_dir)
    pipeline.save_frame(whole[1], data / "unsharded_errors.csv")
    interim = data / "interim"
    products = (pd.read_parquet(interim / "offers.parquet"), pd.read_csv(interim / "scrape_errors.csv"),
                pd.read_parquet(interim / "fetches.parquet"))  # fmt: skip
    _same(products, (whole[0], pd.read_csv(data / "unsharded_errors.csv"), whole[2]))
    assert len(products[0]) == 8 and list(products[1]["kind"]) == ["unknown_retailer"]
    # the task really merged: without walmart's shard it stops, on one line naming the shop and its folder
    walmart = shards.shard_dir(data, KEY, "walmart")
    shutil.rmtree(walmart)
    assert cli.main(["task", "scrape", "--run-key", KEY, "--shops", "amazon,walmart", *args]) == 2
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]  # after the notebook's progress bars
    assert line.startswith("error: task scrape failed: ShardError: scrape shards of run")
    assert line.endswith(f"walmart: missing (no {walmart}/shard.json). Re-run them: priceintel task scrape --shard "
                         f"SHOP --run-key {KEY!r}")  # fmt: skip
