"""The README and docs/ stay true: a first screen that fits, links that resolve, code names that exist."""

from __future__ import annotations

import importlib
import re

import pytest

from priceintel import config

ROOT = config.PROJ_ROOT
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: the docs pages the README promises
#: `priceintel.<suffix>` with these suffixes names a file (a systemd unit, a script), not code
FILE_SUFFIXES = {"py", "service", "timer", "yaml", "json", "toml", "log", "db"}
DOC_PAGES = ["getting-started", "your-data", "notebooks", "scraping", "matching", "forecasting", "pricing", "apps", "operations", "cli",
             "architecture", "benchmarks", "dbt", "scale", "history", "distributed"]


def test_readme_fits_one_screen_and_links_every_doc_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 80
    assert "make demo" in text and "make test" in text
    for page in DOC_PAGES:
        assert f"docs/{page}.md" in text, page
        assert (ROOT / "docs" / f"{page}.md").exists(), page


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).resolve().exists(), f"{page.name}: broken link {target}"


def _resolves(dotted: str) -> bool:
    """priceintel.a.b.c names an importable module, or an attribute chain of one."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
        except ImportError:
            continue
        for attr in parts[n:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_code_name_in_the_docs_exists(page):
    names = {n for n in re.findall(r"\bpriceintel(?:\.[A-Za-z_]\w*)+", page.read_text())
             if n.rsplit(".", 1)[-1] not in FILE_SUFFIXES}  # priceintel.service is a file name, not code
    missing = sorted(n for n in names if not _resolves(n.rstrip(".")))
    assert not missing, f"{page.name} names code that does not exist: {missing}"


def test_the_architecture_tree_names_every_package_and_top_level_module():
    """docs/architecture.md's tree has a line for each package and module directly under src/priceintel/."""
    tree = (ROOT / "docs" / "architecture.md").read_text().split("```text", 1)[1].split("```", 1)[0]
    named = {m.group(1) for m in re.finditer(r"^  (\w+(?:\.py|/))", tree, re.M)}
    src = ROOT / "src" / "priceintel"
    present = {p.name + "/" for p in src.iterdir() if (p / "__init__.py").is_file()}
    present |= {p.name for p in src.glob("*.py")}
    assert present <= named, f"docs/architecture.md's tree lacks {sorted(present - named)}"
