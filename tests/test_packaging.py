"""The project's own files install everything and stay in step."""

import re
import tomllib

import pytest
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
    assert names == ["world", "scrape", "clean", "match", "load", "dbt", "forecast", "elasticity", "evaluate"]
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


def test_base_install_is_plain_requests_with_urllib3_2():
    """requests-html (and its pyppeteer, which pins urllib3<2) is not installed; the base install streams with
    plain requests on urllib3 >= 2 (bounded decompression), and no module of priceintel imports requests_html."""
    import ast

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_name(d): d.replace(" ", "") for d in project["dependencies"]}
    assert "requests-html" not in base and "pyppeteer" not in base
    assert re.fullmatch(r"urllib3>=2(\.\d+)*(,.*)?", base["urllib3"]), base["urllib3"]
    assert not any(_name(d) in ("requests-html", "pyppeteer") for ds in project["optional-dependencies"].values()
                   for d in ds)  # not an extra either: pyppeteer's urllib3<2 cannot install beside urllib3>=2
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    flat = [d for item in env["dependencies"] for d in (item["pip"] if isinstance(item, dict) else [item])]
    assert "urllib3>=2" in flat and not any(_name(d) in ("requests-html", "pyppeteer") for d in flat)
    for path in (ROOT / "src" / "priceintel").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "requests_html" for n in names), path
    from importlib import metadata  # and the environment this runs in (a fresh venv under .ci/run) agrees

    assert int(metadata.version("urllib3").split(".")[0]) >= 2
    for name in ("pyppeteer", "requests-html"):
        with pytest.raises(metadata.PackageNotFoundError):
            metadata.version(name)
