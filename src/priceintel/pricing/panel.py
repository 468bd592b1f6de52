"""Long-panel input checks shared by the elasticity fits (`loglog`, `demand_model`, `elasticity`): required
columns, rows with usable prices and quantities, notes on what was dropped, and the errors they raise."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from priceintel import PriceIntelError
from priceintel.items import require_columns

#: log-price standard deviation under which an elasticity is declared not identified
MIN_LOG_PRICE_STD = 0.02


@dataclass(frozen=True)
class Keys:
    """Column names of a competitor price panel: product, day, seller and price."""

    entity: str = "sku"
    period: str = "ds"
    seller: str = "retailer"
    price: str = "price"

    def all(self) -> list[str]:
        """entity, period, seller, price."""
        return [self.entity, self.period, self.seller, self.price]


KEYS = Keys()  #: the workbench's own names (sku, ds, retailer, price)


class ElasticityError(PriceIntelError):
    """Bad input to an elasticity fit or pricing rule; the message names the column or value."""


class ElasticityWarning(UserWarning):
    """A pricing rule had to fall back (e.g. inelastic demand: the upper bound is returned)."""


def check_columns(panel: pd.DataFrame, cols: Iterable[str], where: str) -> None:
    """Raise ElasticityError naming columns missing from `panel`."""
    require_columns(panel, cols, where, ElasticityError, "not in panel")


def positive_rows(df: pd.DataFrame, price: str, quantity: str) -> tuple[pd.DataFrame, int, int]:
    """Rows with finite positive price and quantity, plus counts of dropped zero / NaN-or-bad rows."""
    p = pd.to_numeric(df[price], errors="coerce")
    q = pd.to_numeric(df[quantity], errors="coerce")
    zero_q = int((q == 0).sum())
    ok = np.isfinite(p) & np.isfinite(q) & (p > 0) & (q > 0)
    bad = int((~ok).sum()) - zero_q
    out = df.loc[ok].copy()
    out[price] = p[ok].astype(float)
    out[quantity] = q[ok].astype(float)
    return out, zero_q, bad


def drop_note(zero_q: int, bad: int) -> list[str]:
    """Human-readable notes for rows dropped before taking logs."""
    notes = []
    if zero_q:
        notes.append(f"dropped {zero_q} row(s) with zero quantity")
    if bad:
        notes.append(f"dropped {bad} row(s) with missing/non-positive price or quantity")
    return notes


def unidentified(n: int, lp_std: float, X: pd.DataFrame | None, min_log_price_std: float) -> str | None:
    """Why an entity's elasticity cannot be estimated from n rows (log-price std lp_std, design X), or None."""
    if n == 0 or X is None:
        return "no usable rows"
    if lp_std < min_log_price_std:
        return f"price variation too small to identify (log-price std {lp_std:.4f} < {min_log_price_std})"
    if n <= X.shape[1] + 1:
        return f"too few observations ({n}) for {X.shape[1]} parameters"
    if np.linalg.matrix_rank(X.to_numpy(dtype=float)) < X.shape[1]:
        return "log price collinear with controls/fixed effects"
    return None
