"""Shared by the benchmark scripts: where results go and how they are written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from priceintel import config


def _default(obj):
    """JSON for numpy numbers (as numbers) and anything else (as text)."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return str(obj)


def write_results(area: str, results: dict, quick: bool) -> Path:
    """Write reports/benchmarks/<area>.json (<area>-quick.json for a smoke run) and return its path."""
    path = config.reports_dir() / "benchmarks" / (f"{area}-quick.json" if quick else f"{area}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=_default) + "\n")
    return path
