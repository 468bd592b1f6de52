"""Price recommendations: profit- or revenue-maximising prices under business constraints, the
expected units / revenue / profit curve with its uncertainty, a plain-language reason, and a
rule layer ("match the lowest competitor but stay above cost + 10%") that combines with the model.

Demand is constant-elasticity around a reference point: units(p) = ref_units * (p / ref_price)^e,
with e ~ Normal(elasticity, se) to carry the estimate's uncertainty into the curve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from priceintel import PriceIntelError
from priceintel.items import plain_float

__all__ = [
    "PricingError",
    "Constraints",
    "MatchLowest",
    "CostPlus",
    "Recommendation",
    "MAX_CHANGE",
    "MAX_ABOVE_LOWEST",
    "constraints_for",
    "current_regular_price",
    "feasible_band",
    "price_curve",
    "recommend",
    "recommend_for_model",
]

#: the apps' default limits: at most ±15% from our current regular price per step ...
MAX_CHANGE = 0.15
#: ... and at most 25% above the cheapest competitor's price
MAX_ABOVE_LOWEST = 0.25


class PricingError(PriceIntelError):
    """Bad input to a price recommendation; the message names the value."""


def _pos(name: str, v, allow_none: bool = True) -> float | None:
    """Validate an optional positive number."""
    if v is None or (allow_none and isinstance(v, float) and np.isnan(v)):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise PricingError(f"{name}={v!r} is not a number") from None
    if not np.isfinite(f) or f <= 0:
        raise PricingError(f"{name}={v!r} must be a positive number")
    return f


@dataclass(frozen=True)
class Constraints:
    """Business constraints on one product's price (all optional except the unit cost)."""

    unit_cost: float
    current_price: float | None = None
    map_price: float | None = None  # minimum advertised price: a floor
    min_margin: float = 0.0  # price >= unit_cost * (1 + min_margin)
    max_change: float | None = None  # |p / current - 1| <= max_change per step
    competitor_prices: Mapping[str, float] = field(default_factory=dict)
    max_above_lowest: float | None = None  # p <= lowest competitor * (1 + x)
    max_below_lowest: float | None = None  # p >= lowest competitor * (1 - x)
    lo: float | None = None
    hi: float | None = None

    @property
    def lowest_competitor(self) -> tuple[str, float] | None:
        """(name, price) of the cheapest competitor with a price, or None."""
        ok = {k: float(v) for k, v in self.competitor_prices.items() if v is not None and np.isfinite(v) and v > 0}
        if not ok:
            return None
        k = min(ok, key=ok.__getitem__)
        return k, ok[k]


def current_regular_price(
    sales: pd.DataFrame, entity: str = "sku", price: str = "price", period: str = "ds", promo: str = "promo"
) -> pd.Series:
    """Our current regular price per `entity`: the last known price (by `period`) on a day without a
    promotion; for an entity with no regular day at all, its last known promotion price. A missing promo
    flag (None, NaN, pd.NA) counts as a regular day; missing prices are skipped, so an entity whose regular
    days have no price gets NaN (no current price), never a promotion price. Without a `promo` column
    every day is regular."""
    missing = [c for c in (entity, price, period) if c not in sales]
    if missing:
        raise PricingError(f"current_regular_price: sales have no column(s) {missing}; they have {list(sales.columns)}")
    s = sales.sort_values(period, kind="stable")
    last = s.groupby(entity)[price].last()
    if promo not in s:
        return last
    on_promo = s[promo].astype("boolean").fillna(False).astype(bool)  # a missing flag is a regular day
    has_regular = (~on_promo).groupby(s[entity]).any()
    regular = s[~on_promo].groupby(entity)[price].last().reindex(last.index)
    return regular.where(has_regular.reindex(last.index), last)


def constraints_for(
    unit_cost: float,
    current_price: float | None,
    map_price: float | None = None,
    competitor_prices: Mapping[str, float] | None = None,
    max_change: float = MAX_CHANGE,
    max_above_lowest: float = MAX_ABOVE_LOWEST,
) -> Constraints:
    """The apps' constraints on one product: the unit cost, MAP as a floor (missing = none), at most
    ±max_change from our current regular price (see `current_regular_price`) and at most
    max_above_lowest above the cheapest of `competitor_prices` ({retailer: latest price})."""
    return Constraints(
        unit_cost=float(unit_cost),
        current_price=plain_float(current_price),
        map_price=plain_float(map_price),
        max_change=max_change,
        competitor_prices=dict(competitor_prices or {}),
        max_above_lowest=max_above_lowest,
    )


def feasible_band(c: Constraints) -> tuple[float, float, list[str]]:
    """(low, high, notes): the price interval allowed by the constraints.

    Floors that protect margin (cost + margin, MAP, `lo`) are hard; when a softer bound (max change,
    competitor band, `hi`) conflicts with them, the floor wins and the conflict is noted.
    """
    _pos("unit_cost", c.unit_cost, allow_none=False)
    cost = float(c.unit_cost)
    cur = _pos("current_price", c.current_price)
    if c.min_margin < 0:
        raise PricingError(f"min_margin={c.min_margin!r} must be >= 0")
    floors = {f"cost + {c.min_margin:.0%}": cost * (1 + c.min_margin)}
    if (map_price := _pos("map_price", c.map_price)) is not None:
        floors["MAP"] = map_price
    if (lower := _pos("lo", c.lo)) is not None:
        floors["lower bound"] = lower
    ceilings: dict[str, float] = {}
    if (upper := _pos("hi", c.hi)) is not None:
        ceilings["upper bound"] = upper
    if c.max_change is not None:
        if cur is None:
            raise PricingError("max_change needs current_price")
        if not 0 < c.max_change < 1:
            raise PricingError(f"max_change={c.max_change!r} must be a fraction in (0, 1)")
        ceilings[f"max change +{c.max_change:.0%}"] = cur * (1 + c.max_change)
        floors_soft = {f"max change -{c.max_change:.0%}": cur * (1 - c.max_change)}
    else:
        floors_soft = {}
    low_comp = c.lowest_competitor
    if low_comp and c.max_above_lowest is not None:
        ceilings[f"at most {c.max_above_lowest:.0%} above {low_comp[0]}"] = low_comp[1] * (1 + c.max_above_lowest)
    if low_comp and c.max_below_lowest is not None:
        floors_soft[f"at most {c.max_below_lowest:.0%} below {low_comp[0]}"] = low_comp[1] * (1 - c.max_below_lowest)
    hard_name = max(floors, key=floors.__getitem__)
    lo = floors[hard_name]
    soft_lo = max(floors_soft.values()) if floors_soft else -np.inf
    notes = []
    if soft_lo > lo:
        lo = soft_lo
    hi = min(ceilings.values()) if ceilings else np.inf
    if hi < lo:
        binding = min(ceilings, key=ceilings.__getitem__)
        if floors[hard_name] > hi:
            notes.append(
                f"'{binding}' (${hi:.2f}) conflicts with '{hard_name}' (${floors[hard_name]:.2f}): the floor wins"
            )
            lo = hi = floors[hard_name]
        else:  # soft floor vs ceiling: the ceiling wins, still above the hard floor
            notes.append(f"'{binding}' (${hi:.2f}) is below the soft floor (${soft_lo:.2f}): the ceiling wins")
            lo = max(floors[hard_name], hi)
            hi = lo
    return float(lo), float(hi), notes


@dataclass(frozen=True)
class MatchLowest:
    """Rule: match the lowest competitor (minus `undercut`), but stay above cost + `floor_margin`."""

    undercut: float = 0.0
    floor_margin: float = 0.10

    def describe(self) -> str:
        """One-line description."""
        u = f" minus {self.undercut:.0%}" if self.undercut else ""
        return f"match the lowest competitor{u} but stay above cost + {self.floor_margin:.0%}"

    def apply(self, c: Constraints) -> tuple[float | None, float, float | None, str]:
        """(target, floor, ceiling, text) for this product; target None without competitor prices."""
        floor = float(c.unit_cost) * (1 + self.floor_margin)
        low = c.lowest_competitor
        if low is None:
            return None, floor, None, "no competitor price known: the rule only sets the floor"
        target = low[1] * (1 - self.undercut)
        return target, floor, target, f"lowest competitor is {low[0]} at ${low[1]:.2f}"


@dataclass(frozen=True)
class CostPlus:
    """Rule: price at cost plus `markup`."""

    markup: float = 0.30

    def describe(self) -> str:
        """One-line description."""
        return f"cost plus {self.markup:.0%}"

    def apply(self, c: Constraints) -> tuple[float | None, float, float | None, str]:
        """(target, floor, ceiling, text)."""
        t = float(c.unit_cost) * (1 + self.markup)
        return t, float(c.unit_cost), None, f"cost ${float(c.unit_cost):.2f}"


@dataclass(frozen=True)
class Recommendation:
    """A recommended price with expected outcomes (mean and interval), the curve and the reason."""

    price: float
    current_price: float | None
    objective: str
    units: float
    units_lo: float
    units_hi: float
    revenue: float
    profit: float
    profit_lo: float
    profit_hi: float
    model_price: float
    band: tuple
    reason: str
    curve: pd.DataFrame = field(repr=False, compare=False, default=None)

    def as_dict(self) -> dict:
        """Scalar fields (no curve) for tables and JSON."""
        d = {
            k: getattr(self, k)
            for k in (
                "price",
                "current_price",
                "objective",
                "units",
                "units_lo",
                "units_hi",
                "revenue",
                "profit",
                "profit_lo",
                "profit_hi",
                "model_price",
                "reason",
            )
        }
        d["band_lo"], d["band_hi"] = self.band
        return d


def price_curve(
    prices,
    elasticity: float,
    se: float,
    ref_price: float,
    ref_units: float,
    unit_cost: float,
    level: float = 0.9,
    draws: int = 2000,
    seed: int = 0,
    level_se: float = 0.0,
) -> pd.DataFrame:
    """Expected units, revenue, profit over `prices` with `level` intervals from the uncertainty of the
    elasticity (`se`) and of the demand level at the reference price (`level_se`, on the log scale)."""
    e = float(elasticity)
    if not np.isfinite(e):
        raise PricingError(f"elasticity={elasticity!r} is not a finite number")
    s = float(se) if se is not None and np.isfinite(se) else 0.0
    rp = _pos("ref_price", ref_price, allow_none=False)
    ru = float(ref_units)
    if not np.isfinite(ru) or ru < 0:
        raise PricingError(f"ref_units={ref_units!r} must be a non-negative number")
    p = np.asarray(prices, dtype=float)
    if p.ndim != 1 or not len(p) or not np.all(np.isfinite(p) & (p > 0)):
        raise PricingError("prices must be a non-empty 1-d array of positive numbers")
    rng = np.random.default_rng(seed)
    ed = e + s * rng.standard_normal(draws)
    rel = np.log(p / rp)
    shift = float(level_se or 0.0) * rng.standard_normal(draws) - float(level_se or 0.0) ** 2 / 2
    u = ru * np.exp(np.outer(rel, ed) + shift[None, :])  # (prices, draws)
    a = (1 - level) / 2
    units = u.mean(axis=1)
    prof = (p - unit_cost)[:, None] * u
    return pd.DataFrame(
        {
            "price": p,
            "units": units,
            "units_lo": np.quantile(u, a, axis=1),
            "units_hi": np.quantile(u, 1 - a, axis=1),
            "revenue": p * units,
            "revenue_lo": p * np.quantile(u, a, axis=1),
            "revenue_hi": p * np.quantile(u, 1 - a, axis=1),
            "profit": prof.mean(axis=1),
            "profit_lo": np.quantile(prof, a, axis=1),
            "profit_hi": np.quantile(prof, 1 - a, axis=1),
        }
    )


def _apply_rule(rule, c: Constraints, lo: float, hi: float, mode: str, notes: list[str]):
    """(lo, hi, target, text): the band narrowed by a pricing rule (its floor always; its target is a ceiling
    in model mode), the rule's target price and its explanation; the band as given without a rule."""
    if rule is None:
        return lo, hi, None, ""
    target, r_floor, r_ceiling, r_text = rule.apply(c)
    rule_text = f"rule '{rule.describe()}': {r_text}"
    if r_floor > lo:
        lo = r_floor
        if hi < lo:
            notes.append(f"the rule's floor ${r_floor:.2f} is above the constraints' ceiling: the floor wins")
            hi = lo
    if mode == "model" and r_ceiling is not None and r_ceiling < hi:
        hi = max(lo, r_ceiling)
    return lo, hi, target, rule_text


def _ceiling(lo: float, hi: float, cost: float, e: float, ref_price: float) -> float:
    """The band's ceiling; without one, 3x the interior optimum of an elastic demand (or 3x ref_price)."""
    if np.isfinite(hi):
        return hi
    interior = cost * e / (1 + e) if e < -1 else None
    if interior is None:
        raise PricingError(
            f"elasticity {e:.2f} is inelastic (>= -1): profit grows without bound in price, so set an "
            "upper bound (hi, max_change or max_above_lowest)"
        )
    return max(lo, 3 * max(interior, float(ref_price)))


def _price_grid(lo: float, hi: float, grid: int) -> np.ndarray:
    """Candidate prices: grid points of [lo, hi] rounded to cents (lo alone when none is left)."""
    prices = np.unique(np.round(np.linspace(lo, hi, grid), 2))
    prices = prices[(prices >= lo - 1e-9) & (prices <= hi + 1e-9)]
    if not len(prices):
        prices = np.array([round(lo, 2)])
    return prices


def recommend(
    elasticity: float,
    se: float,
    ref_price: float,
    ref_units: float,
    constraints: Constraints,
    objective: str = "profit",
    rule=None,
    mode: str = "model",
    grid: int = 301,
    level: float = 0.9,
    seed: int = 0,
    level_se: float = 0.0,
) -> Recommendation:
    """The profit- or revenue-maximising price within the constraints (and rule), with its reason.

    `mode="model"`: the model picks the best price inside the band the constraints and the rule
    allow (a rule's target acts as a ceiling, its floor as a floor). `mode="rule"`: the rule's target
    is used (clipped to the band) and the model only explains what it is expected to do.
    """
    if objective not in ("profit", "revenue"):
        raise PricingError(f"objective={objective!r} must be 'profit' or 'revenue'")
    if mode not in ("model", "rule"):
        raise PricingError(f"mode={mode!r} must be 'model' or 'rule'")
    if mode == "rule" and rule is None:
        raise PricingError("mode='rule' needs a rule")
    c = constraints
    lo, hi, notes = feasible_band(c)
    lo, hi, target, rule_text = _apply_rule(rule, c, lo, hi, mode, notes)
    cost = float(c.unit_cost)
    cur = c.current_price
    e = float(elasticity)
    if not np.isfinite(e):
        raise PricingError(f"elasticity={elasticity!r} is not a finite number: fit or pool an estimate first")
    hi = _ceiling(lo, hi, cost, e, ref_price)
    prices = _price_grid(lo, hi, grid)
    extra = [p for p in (cur, target) if p is not None and np.isfinite(p)]
    curve = price_curve(
        np.unique(np.concatenate([prices, np.clip(extra, lo, hi)])) if extra else prices,
        e,
        se,
        ref_price,
        ref_units,
        cost,
        level=level,
        seed=seed,
        level_se=level_se,
    )
    best = curve.loc[curve[objective].idxmax()]
    model_price = float(best["price"])
    if mode == "rule" and target is not None:
        price = float(np.clip(round(target, 2), lo, hi))
        chosen = curve.iloc[(curve["price"] - price).abs().argmin()]
    else:
        price, chosen = model_price, best
    reason = _reason(price, chosen, curve, e, se, cost, cur, lo, hi, objective, model_price, mode, rule_text, notes, c)
    return Recommendation(
        price=price,
        current_price=cur,
        objective=objective,
        units=float(chosen["units"]),
        units_lo=float(chosen["units_lo"]),
        units_hi=float(chosen["units_hi"]),
        revenue=float(chosen["revenue"]),
        profit=float(chosen["profit"]),
        profit_lo=float(chosen["profit_lo"]),
        profit_hi=float(chosen["profit_hi"]),
        model_price=model_price,
        band=(float(lo), float(hi)),
        reason=reason,
        curve=curve,
    )


def _reason(price, chosen, curve, e, se, cost, cur, lo, hi, objective, model_price, mode, rule_text, notes, c) -> str:
    """Plain-language explanation of a recommendation."""
    parts = []
    if cur:
        parts.append(f"Recommended ${price:.2f} (now ${cur:.2f}, {price / cur - 1:+.1%}).")
    else:
        parts.append(f"Recommended ${price:.2f}.")
    kind = "elastic" if e < -1 else "inelastic"
    se_txt = f" ± {1.96 * se:.2f}" if se and np.isfinite(se) else ""
    parts.append(f"Demand is {kind} (elasticity {e:.2f}{se_txt}): a 1% price rise changes units by {e:.1f}%.")
    if e < -1 and objective == "profit":
        parts.append(f"Unconstrained, profit peaks at cost × e/(1+e) = ${cost * e / (1 + e):.2f}.")
    elif objective == "revenue":
        parts.append("Revenue rises with price while demand is inelastic and falls once it is elastic.")
    at_lo, at_hi = abs(price - lo) < 0.011, abs(price - hi) < 0.011
    if mode == "model" and (at_lo or at_hi) and lo < hi:
        parts.append(
            f"The allowed band is ${lo:.2f}–${hi:.2f}; the price sits at its "
            f"{'floor' if at_lo else 'ceiling'}{_binding(c, price)}."
        )
    elif lo == hi:
        parts.append(f"The constraints leave only ${lo:.2f}{_binding(c, price)}.")
    if rule_text:
        parts.append(rule_text[0].upper() + rule_text[1:] + ".")
        if mode == "rule" and abs(model_price - price) > 0.005:
            gap = float(curve.loc[curve[objective].idxmax(), objective] - chosen[objective])
            parts.append(f"The model alone would pick ${model_price:.2f} (+${gap:,.2f} expected {objective}).")
    parts.append(
        f"Expected {chosen['units']:.1f} units [{chosen['units_lo']:.1f}, {chosen['units_hi']:.1f}], "
        f"revenue ${chosen['revenue']:,.2f}, profit ${chosen['profit']:,.2f}."
    )
    if cur:
        now = curve.iloc[(curve["price"] - cur).abs().argmin()]
        if abs(float(now["price"]) - cur) < 0.006 and now[objective]:
            parts.append(f"That is {chosen[objective] / now[objective] - 1:+.1%} {objective} vs the current price.")
    parts.extend(n[0].upper() + n[1:] + "." for n in notes)
    return " ".join(parts)


def _binding(c: Constraints, price: float) -> str:
    """Name the constraint that sits at `price`, if any."""
    cands = {f"cost + {c.min_margin:.0%}": c.unit_cost * (1 + c.min_margin)}
    if c.map_price:
        cands["MAP"] = c.map_price
    if c.max_change and c.current_price:
        cands[f"max change {c.max_change:.0%}"] = c.current_price * (1 + c.max_change)
        cands[f"max change -{c.max_change:.0%}"] = c.current_price * (1 - c.max_change)
    low = c.lowest_competitor
    if low and c.max_above_lowest is not None:
        cands[f"{c.max_above_lowest:.0%} above {low[0]}"] = low[1] * (1 + c.max_above_lowest)
    if low:
        cands[f"the lowest competitor ({low[0]})"] = low[1]
    if c.lo:
        cands["lower bound"] = c.lo
    if c.hi:
        cands["upper bound"] = c.hi
    hit = [k for k, v in cands.items() if v is not None and abs(float(v) - price) < 0.011]
    return f" ({', '.join(hit)})" if hit else ""


def recommend_for_model(model, entity_key, constraints: Constraints, pooled: bool = True, **kw) -> Recommendation:
    """`recommend` from a fitted `elasticity.DemandModel`: its (pooled) elasticity and reference point."""
    est = model.estimates.set_index(model.entity)
    if entity_key not in est.index:
        raise PricingError(f"no estimate for {model.entity}={entity_key!r}")
    r = est.loc[entity_key]
    use_pooled = pooled and "elasticity_pooled" in est.columns and np.isfinite(r.get("elasticity_pooled", np.nan))
    e = r["elasticity_pooled"] if use_pooled else r["elasticity"]
    se = r["se_pooled"] if use_pooled else r["se"]
    fit = model.fits.get(entity_key)
    if fit is None:
        raise PricingError(f"{model.entity}={entity_key!r} has no fitted demand ({r['note']})")
    ref_price = constraints.current_price or fit.ref_price
    ref_units = fit.ref_units * (ref_price / fit.ref_price) ** float(e)
    kw.setdefault("level_se", float(np.std(fit.residuals) / np.sqrt(max(fit.n, 1))))
    return recommend(e, se, ref_price, ref_units, constraints, **kw)
