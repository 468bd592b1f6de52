"""The shape of the code: layers go one way, lint/format/types are clean, modules and functions stay readable."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from priceintel import config

SRC = config.PROJ_ROOT / "src" / "priceintel"
BIN = Path(sys.executable).parent
#: limits from the layout issue; a longer module or function needs a comment saying why (see _allowed)
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
#: the marker of such a comment, on the line(s) right above the def (or anywhere in a module's first 5 lines)
WHY = "# long:"


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=config.PROJ_ROOT, capture_output=True, text=True, timeout=600)


def test_layers_go_one_way():
    """import-linter's layers contract (pyproject.toml): core -> db -> domain -> pipeline -> apps -> cli."""
    res = _run(str(BIN / "lint-imports"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_ruff_lint_and_format_are_clean():
    lint = _run(str(BIN / "ruff"), "check", "src")
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = _run(str(BIN / "ruff"), "format", "--check", "src")
    assert fmt.returncode == 0, fmt.stdout[-3000:]


@pytest.mark.slow
def test_mypy_is_clean():
    res = _run(str(BIN / "mypy"))
    assert res.returncode == 0, res.stdout[-4000:]


def _allowed(lines: list[str], lineno: int) -> bool:
    """A `# long: <reason>` comment on one of the three lines above `lineno` (1-based), decorators skipped."""
    i = lineno - 2
    while i >= 0 and lines[i].lstrip().startswith("@"):
        i -= 1
    return any(WHY in lines[j] for j in range(max(0, i - 2), i + 1))


def test_no_module_or_function_is_too_long():
    too_long = []
    for path in _sources():
        text = path.read_text()
        lines = text.splitlines()
        rel = path.relative_to(SRC.parent)
        if len(lines) > MAX_MODULE_LINES and not any(WHY in ln for ln in lines[:5]):
            too_long.append(f"{rel}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and not _allowed(lines, node.lineno):
                    too_long.append(f"{rel}:{node.lineno} {node.name}: {n} lines")
    assert not too_long, "\n".join(too_long)


def test_no_import_cycle_between_packages():
    """Package-level import graph (function-local imports included) has no cycle."""
    graph: dict[str, set[str]] = {}
    for path in _sources():
        parts = path.relative_to(SRC).with_suffix("").parts
        pkg = parts[0] if len(parts) > 1 else parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("priceintel."):
                target = node.module.split(".")[1]
                if target != pkg:
                    graph.setdefault(pkg, set()).add(target)
    seen: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert seen.get(nxt) != 1, "import cycle: " + " -> ".join([*stack, node, nxt])
            if nxt not in seen:
                visit(nxt, [*stack, node])
        seen[node] = 2

    for n in sorted(graph):
        if n not in seen:
            visit(n, [])
