"""The project's own files install everything and stay in step."""

import re
import tomllib

import yaml

from priceintel import config

ROOT = config.PROJ_ROOT


def _name(dep: str) -> str:
    return re.split(r"[<>=\[ ]", dep.strip('"'))[0].lower()


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {d for d in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = set()
    for item in env["dependencies"]:
        if isinstance(item, dict):
            listed |= {d for d in item["pip"]}
        else:
            listed.add(item)
    assert {d for d in wanted} <= listed, sorted(wanted - listed)
    # every dependency carries a lower bound
    assert all(">=" in d for d in wanted), [d for d in wanted if ">=" not in d]


def test_ci_runs_exactly_the_test_command():
    body = (ROOT / ".ci" / "run").read_text()
    commands = [ln for ln in body.splitlines() if ln.strip() and not ln.startswith("#")]
    assert commands[-1].strip() == "make test"
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_pipeline_chains_task_notebooks_with_declared_products():
    spec = yaml.safe_load((ROOT / "pipeline.yaml").read_text())
    names = [t["name"] for t in spec["tasks"]]
    assert names == ["world", "scrape", "clean", "match", "load", "forecast", "elasticity", "evaluate"]
    for task in spec["tasks"]:
        src = ROOT / task["source"]
        assert src.exists()
        text = src.read_text()
        assert '# %% tags=["parameters"]' in text
        assert "nb" in task["product"] and len(task["product"]) >= 2


def test_make_test_fast_and_lint_run_what_they_say():
    import subprocess

    fast = subprocess.run(["make", "-n", "test-fast"], cwd=ROOT, capture_output=True, text=True).stdout
    assert 'pytest -m "not slow"' in fast
    lint = subprocess.run(["make", "-n", "lint"], cwd=ROOT, capture_output=True, text=True).stdout
    assert all(tool in lint for tool in ("ruff check src", "ruff format --check src", "lint-imports", "mypy"))
