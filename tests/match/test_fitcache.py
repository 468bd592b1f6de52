"""The matcher's fit cache: the same pairs and settings give back the very fit, from another process too; any
change to the pairs, the settings or the held-out mask is a new fit; a torn entry is fitted again; `off` keeps
nothing; only the newest fits are kept."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from priceintel.match import fitcache
from priceintel.match import model as M


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(fitcache.CACHE_ENV, str(tmp_path))
    fitcache._MEMORY.clear()
    yield tmp_path / "matcher"
    fitcache._MEMORY.clear()


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    dl, dp, dt = M._demo_world(5, 40)
    return M.labelled_candidates(dl, dp, truth=dt)


def _counting(calls: list):
    def fit():
        calls.append(1)
        return {"fit": len(calls), "weights": np.arange(3.0)}
    return fit


def test_same_pairs_and_settings_are_fitted_once(cache, pairs):
    calls: list = []
    first = fitcache.fitted(pairs, ("s", 1), _counting(calls))
    first["weights"][0] = 99.0  # a caller's change never reaches the cache: not the one in memory
    assert fitcache.fitted(pairs, ("s", 1), _counting(calls))["weights"][0] == 0.0
    fitcache._MEMORY.clear()  # as a new process would start: from the disk
    again = fitcache.fitted(pairs, ("s", 1), _counting(calls))
    assert calls == [1] and again["fit"] == 1 and again["weights"][0] == 0.0
    assert len(list(cache.glob("*.pkl"))) == 1
    changed = pairs.assign(token_set=pairs["token_set"].where(pairs.index != 0, 0.123))
    fitcache.fitted(changed, ("s", 1), _counting(calls))  # one value changed
    fitcache.fitted(pairs, ("s", 2), _counting(calls))  # one setting changed
    fitcache.fitted(pairs, ("s", 1), _counting(calls), rows=np.ones(len(pairs), bool))  # a mask given
    assert len(calls) == 4 and len(list(cache.glob("*.pkl"))) == 4


def test_a_cached_listing_model_is_the_fitted_one_in_another_process(cache, pairs, tmp_path):
    fitted = M._fit_listing_model(pairs, 0.98, 0.5, 17)
    assert len(list(cache.glob("*.pkl"))) == 1
    pairs.to_pickle(tmp_path / "pairs.pkl")
    code = ("import pandas as pd, sys; from priceintel.match import model as M;"
            f"d = pd.read_pickle({str(tmp_path / 'pairs.pkl')!r});"
            "M._fit_now = lambda *a, **k: sys.exit('fitted again');"
            "m = M._fit_listing_model(d, 0.98, 0.5, 17);"
            "print(m.threshold, m.review_low, m.n_pairs, list(m.classifier.predict_proba(d.head(50)).round(12)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ}).stdout.split(" ", 3)
    assert float(out[0]) == fitted.threshold and float(out[1]) == fitted.review_low and int(out[2]) == fitted.n_pairs
    assert out[3].strip() == str(list(fitted.classifier.predict_proba(pairs.head(50)).round(12)))
    fresh = M._fit_now(pairs, 0.98, 0.5, 17, None)  # and a fit made now agrees with both
    assert fresh.threshold == fitted.threshold
    np.testing.assert_array_equal(fresh.classifier.predict_proba(pairs), fitted.classifier.predict_proba(pairs))


def test_a_torn_entry_is_fitted_again_and_off_keeps_nothing(cache, pairs, monkeypatch):
    calls: list = []
    fitcache.fitted(pairs, ("t",), _counting(calls))
    (entry,) = cache.glob("*.pkl")
    entry.write_bytes(entry.read_bytes()[:20])
    fitcache._MEMORY.clear()
    assert fitcache.fitted(pairs, ("t",), _counting(calls))["fit"] == 2  # refitted, and the entry replaced
    fitcache._MEMORY.clear()
    assert fitcache.fitted(pairs, ("t",), _counting(calls))["fit"] == 2
    monkeypatch.setenv(fitcache.CACHE_ENV, "off")
    assert fitcache.cache_dir() is None
    fitcache._MEMORY.clear()
    fitcache.fitted(pairs, ("u",), _counting(calls))
    assert len(calls) == 3 and len(list(cache.glob("*.pkl"))) == 1


def test_only_the_newest_fits_are_kept(cache, pairs, monkeypatch):
    monkeypatch.setattr(fitcache, "KEEP", 3)
    calls: list = []
    for i in range(5):
        fitcache.fitted(pairs, ("k", i), _counting(calls))
        newest = max(cache.glob("*.pkl"), key=lambda p: p.stat().st_mtime)
        os.utime(newest, (1_000_000 + i, 1_000_000 + i))  # distinct times, in order
    kept = sorted(p.stat().st_mtime for p in cache.glob("*.pkl"))
    assert kept == [1_000_002, 1_000_003, 1_000_004]


def test_an_unwritable_cache_is_skipped(tmp_path, pairs, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(fitcache.CACHE_ENV, str(blocker))
    fitcache._MEMORY.clear()
    calls: list = []
    assert fitcache.fitted(pairs, ("w",), _counting(calls))["fit"] == 1
    assert "not written" in caplog.text
    fitcache._MEMORY.clear()


def test_own_data_models_adjusting_thresholds_leave_the_cached_fit_alone(cache):
    dl, dp, dt = M._demo_world(9, 60)
    strict = M.own_data_model(dl, dp, min_auto=0.99)
    loose = M.own_data_model(dl, dp, min_auto=0.0)  # the same pairs: the cached fit, its own thresholds
    assert strict is not None and loose is not None and len(list(cache.glob("*.pkl"))) == 1
    assert strict.threshold >= 0.99 and loose.threshold < strict.threshold
    assert M.own_data_model(dl, dp, min_auto=0.0).threshold == loose.threshold


def test_no_home_means_no_disk_cache(monkeypatch):
    monkeypatch.delenv(fitcache.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(fitcache.Path, "home", classmethod(lambda cls: (_ for _ in ()).throw(RuntimeError("no home"))))
    assert fitcache.cache_dir() is None
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert str(fitcache.cache_dir()) == "/somewhere/priceintel/matcher"


def test_a_fit_that_cannot_be_pickled_is_used_and_leaves_no_partial_file(cache, pairs, caplog):
    value = fitcache.fitted(pairs, ("p",), lambda: {"fn": lambda: 1})  # a lambda does not pickle
    assert value["fn"]() == 1 and "not written" in caplog.text
    assert list(cache.glob("*")) == []  # the folder holds neither an entry nor a .part- file
