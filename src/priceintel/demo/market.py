"""Simulated prices and demand: competitor price paths (promotions, stock-outs, price wars, undercuts),
our own prices and Poisson log-log demand. Every function draws from the generator it is given.
"""

from __future__ import annotations

from datetime import date

import numpy as np

#: cents endings a competitor's regular price cycles through (one per price change)
_ENDINGS = np.array([0.99, 0.99, 0.49, 0.79, 0.99])
#: log-demand effect of each weekday
_DOW_EFFECT = np.array([-0.06, -0.08, -0.04, 0.0, 0.07, 0.15, 0.10])  # Mon..Sun
#: each retailer's regular price level relative to the MSRP
_RETAILER_FACTOR = {"amazon": 0.94, "walmart": 0.92, "target": 0.97}


def _ending(x: np.ndarray, ending: np.ndarray | float) -> np.ndarray:
    """Largest price ≤ x with the given cents ending (at least the ending itself)."""
    return np.round(np.maximum(np.floor(x - ending) + ending, ending), 2)


def _spells(
    rng: np.random.Generator, shape: tuple[int, int], p: float, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random on/off spells: (active mask, index of the spell's start day or -1)."""
    n, d = shape
    start = rng.random(shape) < p
    days = np.arange(d)
    dur = rng.integers(lo, hi + 1, size=shape)
    end = np.maximum.accumulate(np.where(start, days + dur - 1, -1), axis=1)
    last = np.maximum.accumulate(np.where(start, days, -1), axis=1)
    return (end >= days) & (last >= 0), last


def _own_prices(rng: np.random.Generator, base: np.ndarray, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Our daily price (regular steps + own promotions) and promo flags, shape (n, days)."""
    n = len(base)
    steps = np.where(rng.random((n, n_days)) < 1 / 45, rng.uniform(0.85, 1.15, (n, n_days)), 1.0)
    steps[:, 0] = 1.0
    level = np.clip(np.cumprod(steps, axis=1), 0.8, 1.2)
    regular = _ending(base[:, None] * level, 0.99)
    promo, last = _spells(rng, (n, n_days), 1 / 12, 2, 7)
    disc = np.take_along_axis(rng.uniform(0.10, 0.30, (n, n_days)), np.maximum(last, 0), axis=1)
    price = np.where(promo, np.round(regular * (1 - disc), 2), regular)
    return price, promo


def _events(rng: np.random.Generator, n: int, n_days: int, per: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson(n * n_days / per) competitor events: product, retailer (0-2) and start day of each."""
    e = int(rng.poisson(n * n_days / per))
    return rng.integers(0, n, e), rng.integers(0, 3, e), rng.integers(0, n_days, e)


def _war_caps(
    rng: np.random.Generator, regular: np.ndarray, plist: np.ndarray, n_days: int, cap: np.ndarray
) -> dict[str, np.ndarray]:
    """Price wars: a leader undercuts a product for a week, the others follow 1–2 days later.

    Lowers `cap` in place and returns the episodes (product, leader, start, cut, lag).
    """
    prod, leader, start = _events(rng, plist.shape[1], n_days, 200)
    e = len(prod)
    cut = rng.uniform(0.15, 0.25, e)
    lag = rng.integers(1, 3, e)
    k = np.arange(7)
    lead_listing = plist[leader, prod]
    lead_price = _ending(regular[lead_listing, start] * (1 - cut), 0.99)
    rets = np.arange(3)
    li = plist[rets[None, :], prod[:, None]]  # (e, 3)
    days = start[:, None, None] + k[None, None, :]  # (e, 1, 7)
    is_leader = rets[None, :] == leader[:, None]  # (e, 3)
    follow = lead_price[:, None, None] * (1 + rng.uniform(-0.02, 0.01, (e, 3, 1)))
    vals = np.where(is_leader[:, :, None], lead_price[:, None, None], np.round(follow, 2))
    ok = (days < n_days) & (is_leader[:, :, None] | (k[None, None, :] >= lag[:, None, None]))
    li_b = np.broadcast_to(li[:, :, None], ok.shape)
    days_b = np.broadcast_to(days, ok.shape)
    vals_b = np.broadcast_to(vals, ok.shape)
    np.minimum.at(cap, (li_b[ok], days_b[ok]), vals_b[ok])
    return {"product": prod, "leader": leader, "start": start, "cut": cut, "lag": lag}


def _undercut_caps(
    rng: np.random.Generator, own_price: np.ndarray, plist: np.ndarray, cap: np.ndarray
) -> dict[str, np.ndarray]:
    """Competitor undercuts of our price: 5–14 days just below our own price; lowers `cap`."""
    n, n_days = own_price.shape
    prod, ret, start = _events(rng, n, n_days, 150)
    e = len(prod)
    dur = rng.integers(5, 15, e)
    delta = rng.uniform(0.01, 0.06, e)
    k = np.arange(14)
    days = start[:, None] + k[None, :]
    ok = (days < n_days) & (k[None, :] < dur[:, None])
    dclip = np.minimum(days, n_days - 1)
    vals = np.round(own_price[prod[:, None], dclip] * (1 - delta[:, None]), 2)
    li = np.broadcast_to(plist[ret, prod][:, None], ok.shape)
    np.minimum.at(cap, (li[ok], days[ok]), vals[ok])
    return {"product": prod, "retailer": ret, "start": start, "duration": dur, "delta": delta}


def _competitor_prices(
    rng: np.random.Generator, msrp: np.ndarray, factor: np.ndarray, n_days: int, cap: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-listing daily regular price, shelf price, list price, stock and promo (L, days)."""
    n = len(msrp)
    reg0 = msrp * factor * rng.uniform(0.96, 1.04, n)
    events = rng.random((n, n_days)) < 1 / 120
    events[:, 0] = False
    steps = np.where(events, rng.uniform(0.9, 1.1, (n, n_days)), 1.0)
    ending = _ENDINGS[(np.cumsum(events, axis=1) + rng.integers(0, 5, n)[:, None]) % len(_ENDINGS)]
    regular = _ending(reg0[:, None] * np.cumprod(steps, axis=1), ending)
    promo, last = _spells(rng, (n, n_days), 1 / 35, 3, 10)
    disc = np.take_along_axis(rng.uniform(0.10, 0.30, (n, n_days)), np.maximum(last, 0), axis=1)
    price = np.where(promo, np.round(regular * (1 - disc), 2), regular)
    oos, _ = _spells(rng, (n, n_days), 1 / 80, 1, 5)
    return {"regular": regular, "price": price, "promo": promo, "oos": oos}


def _demand(
    rng: np.random.Generator,
    own_price: np.ndarray,
    base_price: np.ndarray,
    comp_price: np.ndarray,
    fallback: np.ndarray,
    start: date,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(units, own elasticities, cross elasticities): Poisson log-log demand per sku and day.

    `comp_price` is (3, n, days) shelf prices (NaN when out of stock); `fallback` a per-sku
    reference used when no competitor has stock on any day.
    """
    n: int
    d: int
    n, d = own_price.shape
    own_e = rng.uniform(-3.5, -1.0, n)
    cross_e = rng.uniform(0.1, 0.8, n)
    baseline = np.exp(rng.uniform(np.log(30), np.log(300), n))
    comp_min = np.fmin.reduce(comp_price, axis=0)
    comp_ref = np.nanmedian(
        np.where(np.isnan(comp_min).all(axis=1, keepdims=True), fallback[:, None], comp_min), axis=1
    )
    comp_min = np.where(np.isnan(comp_min), comp_ref[:, None], comp_min)
    dow = _DOW_EFFECT[(start.weekday() + np.arange(d)) % 7]
    lam = baseline[:, None] * np.exp(
        own_e[:, None] * np.log(own_price / base_price[:, None])
        + cross_e[:, None] * np.log(comp_min / comp_ref[:, None])
        + dow[None, :]
    )
    return rng.poisson(lam).astype(np.int64), own_e, cross_e
