"""Shared facts of every stage: GTINs (GS1) and missing values."""

import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from priceintel.items import jsonable, normalize_gtin, plain, plain_float, valid_gtin


def test_gtin_validation():
    assert valid_gtin("036000291452") == "036000291452"
    assert valid_gtin("0-36000-29145-2") == "036000291452"
    assert valid_gtin("4006381333931") == "4006381333931"
    assert valid_gtin("96385074") == "96385074"
    assert valid_gtin(36000291452) == "036000291452"
    assert valid_gtin("036000291453") is None and valid_gtin("abc") is None
    assert valid_gtin("12345") is None and valid_gtin(None) is None and valid_gtin(True) is None
    assert normalize_gtin("036000291452") == "0036000291452" and normalize_gtin("bad") is None
    assert normalize_gtin("10036000291459") == "10036000291459"  # a GTIN-14 keeps its packaging indicator


def test_missing_values_become_none_and_numpy_scalars_builtins():
    for missing in (None, float("nan"), np.float64("nan"), math.inf, pd.NA, pd.NaT, np.float32("inf")):
        assert plain(missing) is None, missing
    assert plain(np.int64(3)) == 3 and type(plain(np.int64(3))) is int
    assert plain("x") == "x" and plain(date(2026, 1, 2)) == date(2026, 1, 2)
    assert plain_float("2.5") == 2.5 and plain_float(np.nan) is None and plain_float(pd.NA) is None
    assert jsonable({1: [np.float32(1.5), pd.Timestamp("2026-01-01"), Path("/a"), float("nan")],
                     "df": pd.DataFrame({"a": [1, None]})}) == {
        "1": [1.5, "2026-01-01T00:00:00", "/a", None], "df": [{"a": 1.0}, {"a": None}]}
