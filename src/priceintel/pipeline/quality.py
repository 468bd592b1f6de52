"""Data checks for the pipeline's `on_finish` hooks and tests; a failure names table, column and rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from priceintel import PriceIntelError
from priceintel.db.queries import MATCHED
from priceintel.items import OBSERVATION_COLUMNS


class QualityError(PriceIntelError):
    """A data check failed; the message names the check, the table, the column and the row count."""


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one named check on one table."""

    name: str
    table: str
    column: str | None
    failed_rows: int
    passed: bool
    detail: str = ""
    severity: str = "critical"  #: critical failures stop downstream tasks; warnings only notify
    stage: str = ""


def check_observations(obs: pd.DataFrame, table: str = "observations") -> list[CheckResult]:
    """Schema and content checks on the canonical observation frame."""
    results: list[CheckResult] = []
    missing = [c for c in OBSERVATION_COLUMNS if c not in obs.columns]
    results.append(
        CheckResult(
            "columns_present",
            table,
            ",".join(missing) or None,
            len(missing),
            not missing,
            f"missing columns: {missing}" if missing else "",
        )
    )
    if missing:
        return results
    dup = int(obs.duplicated(["retailer", "item_id", "ds"]).sum())
    results.append(CheckResult("unique_listing_day", table, "retailer,item_id,ds", dup, dup == 0))
    nonpos = int((obs["price"].notna() & (obs["price"] <= 0)).sum())
    results.append(CheckResult("price_positive", table, "price", nonpos, nonpos == 0))
    instock_noprice = int((obs["in_stock"].fillna(False).astype(bool) & obs["price"].isna()).sum())
    results.append(CheckResult("in_stock_has_price", table, "price", instock_noprice, instock_noprice == 0))
    cur = obs["currency"].dropna().astype(str)
    badcur = int((~cur.str.fullmatch(r"[A-Z]{3}")).sum())
    results.append(CheckResult("currency_iso4217", table, "currency", badcur, badcur == 0))
    noid = int(obs["item_id"].isna().sum())
    results.append(CheckResult("item_id_present", table, "item_id", noid, noid == 0))
    return results


def raise_on_failure(results: list[CheckResult]) -> None:
    """Raise QualityError listing every failed check."""
    failed = [r for r in results if not r.passed]
    if failed:
        lines = [
            f"{r.name}: table {r.table}, column {r.column}: {r.failed_rows} rows {r.detail}".rstrip() for r in failed
        ]
        raise QualityError("data checks failed:\n  " + "\n  ".join(lines))


def results_frame(results: list[CheckResult]) -> pd.DataFrame:
    """Check results as a frame for reports."""
    return pd.DataFrame([r.__dict__ for r in results])


def check_observations_product(product) -> None:
    """Ploomber on_finish hook for the clean task: checks its observations product."""
    obs = pd.read_parquet(str(product["observations"]))
    raise_on_failure(check_observations(obs, table=str(product["observations"])))


# --------------------------------------------------------------------------- pandera schemas
# Schema checks on each stage's frames; `validate_frame` turns pandera's failure cases into
# CheckResults named `<schema>.<check>` (e.g. `observations.unique_listing_day`).


def _schemas() -> dict:
    """The pandera schema of every stage frame (built lazily: pandera is imported on first use)."""
    import pandera.pandas as pa

    currency = pa.Check.str_matches(r"^[A-Z]{3}$", name="currency_iso4217")
    return {
        "offers": pa.DataFrameSchema(
            {
                "url": pa.Column(str, nullable=False),
                "retailer": pa.Column(str, nullable=True),
                "page_kind": pa.Column(
                    str,
                    pa.Check.isin(["product", "blocked", "not_found", "no_price", "truncated"], name="page_kind_known"),
                ),
                "currency": pa.Column(str, currency, nullable=True),
            },
            strict=False,
            coerce=False,
        ),
        "observations": pa.DataFrameSchema(
            {
                "retailer": pa.Column(str, nullable=False),
                "item_id": pa.Column(str, nullable=False),
                "ds": pa.Column("datetime64[ns]", nullable=False),
                "price": pa.Column(float, pa.Check.gt(0, name="price_positive"), nullable=True),
                "currency": pa.Column(str, currency, nullable=True),
                "in_stock": pa.Column(bool, nullable=True),
            },
            unique=["retailer", "item_id", "ds"],
            strict=False,
        ),
        "listings": pa.DataFrameSchema(
            {
                "retailer": pa.Column(str, nullable=False),
                "item_id": pa.Column(str, nullable=False),
            },
            unique=["retailer", "item_id"],
            strict=False,
        ),
        "matches": pa.DataFrameSchema(
            {
                "retailer": pa.Column(str, nullable=False),
                "item_id": pa.Column(str, nullable=False),
                "sku": pa.Column(str, nullable=True),
                "score": pa.Column(float, pa.Check.in_range(0, 1, name="score_in_0_1"), nullable=True),
                "status": pa.Column(
                    str, pa.Check.isin(["auto", "review", "confirmed", "rejected"], name="status_known")
                ),
            },
            unique=["retailer", "item_id"],
            strict=False,
        ),
    }


#: friendlier names for pandera's built-in checks
_PANDERA_NAMES = {
    "multiple_fields_uniqueness": "unique_key",
    "column_in_dataframe": "column_present",
    "not_nullable": "not_null",
    "dtype": "dtype",
    "str_matches": "currency_iso4217",
    "greater_than": "price_positive",
    "in_range": "score_in_0_1",
    "isin": "value_known",
}
SCHEMAS = ("offers", "observations", "listings", "matches")


def validate_frame(df: pd.DataFrame, schema: str, stage: str = "") -> list[CheckResult]:
    """Run the named pandera schema on df; one CheckResult per failing (column, check), or one pass."""
    import pandera.errors as pe

    if schema not in SCHEMAS:
        raise QualityError(f"unknown frame schema {schema!r}; expected one of {SCHEMAS}")
    try:
        _schemas()[schema].validate(df.reset_index(drop=True), lazy=True)
    except pe.SchemaErrors as err:
        cases = err.failure_cases.copy()
        cases["check"] = cases["check"].astype(str).str.replace(r"\(.*", "", regex=True)
        uniq = cases["check"] == "multiple_fields_uniqueness"
        cases["column"] = cases["column"].fillna("").astype(str)
        cases.loc[uniq, "column"] = ",".join(_schemas()[schema].unique or [])
        out = []
        for (col, check), part in cases.groupby(["column", "check"], sort=True):
            name = _PANDERA_NAMES.get(check, check)
            if check == "multiple_fields_uniqueness" and schema == "observations":
                name = "unique_listing_day"
            rows = int(part["index"].nunique()) if part["index"].notna().any() else len(part)
            sample = ", ".join(list(dict.fromkeys(str(v) for v in part["failure_case"]))[:3])
            out.append(
                CheckResult(f"{schema}.{name}", schema, col or None, rows, False, f"e.g. {sample}", "critical", stage)
            )
        return out
    return [CheckResult(f"{schema}.schema", schema, None, 0, True, "", "critical", stage)]


def save_results(results: list[CheckResult], path) -> None:
    """Write check results as JSON (the load hook stores them in quality_result)."""
    import json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps([r.__dict__ for r in results], indent=1, default=str))


def read_results(path) -> list[CheckResult]:
    """Read check results written by save_results ([] when absent)."""
    import json

    if not Path(path).exists():
        return []
    return [CheckResult(**d) for d in json.loads(Path(path).read_text())]


def _frame_hook(product, key: str, schema: str, stage: str) -> list[CheckResult]:

    path = Path(str(product[key]))
    df = pd.read_parquet(path)
    results = validate_frame(df, schema, stage)
    save_results(results, path.parent / f"quality_{stage}_{schema}.json")
    return results


def check_offers_product(product) -> None:
    """Ploomber on_finish hook for the scrape task: pandera schema on its offers."""
    raise_on_failure(_frame_hook(product, "offers", "offers", "scrape"))


def check_matches_product(product) -> None:
    """Ploomber on_finish hook for the match task: pandera schema on its matches."""
    raise_on_failure(_frame_hook(product, "matches", "matches", "match"))


def check_clean_products(product) -> None:
    """Ploomber on_finish hook for the clean task: checks and pandera schemas on observations and listings."""

    obs_path = Path(str(product["observations"]))
    obs = pd.read_parquet(obs_path)
    results = [
        CheckResult(r.name, r.table, r.column, r.failed_rows, r.passed, r.detail, "critical", "clean")
        for r in check_observations(obs, table=str(obs_path))
    ]
    results += validate_frame(obs, "observations", "clean")
    results += _frame_hook(product, "listings", "listings", "clean")
    save_results(results, obs_path.parent / "quality_clean_observations.json")
    raise_on_failure(results)


# ------------------------------------------------------------------------------ SQL checks

#: thresholds of the checks after each load (override with keyword arguments of sql_checks)
SQL_DEFAULTS = {
    "max_age_days": 1,
    "min_coverage": 0.9,
    "jump_ratio": 10.0,
    "min_match_coverage": 0.8,
    "history_days": 60,
    "extraction_drop_ratio": 0.5,
    "extraction_baseline_days": 14,
}


def _scalar_rows(conn, sql: str, params: dict) -> list:
    import sqlalchemy as sa

    return conn.execute(sa.text(sql), params).all()


@dataclass(frozen=True)
class _Day:
    """What every SQL check reads: the checked day, the bound dates (d: as_of, y: the day before, h: the start of
    the history window), the thresholds and the expected currencies."""

    as_of: date
    params: dict
    opts: dict
    expected_currencies: tuple[str, ...] | None


def _share_result(
    name: str, table: str, column: str, part: int, whole: int, option: str, day: _Day, what: str
) -> CheckResult:
    """A warning check that part of whole (1.0 when whole is 0) is at least the `option` threshold."""
    share = part / whole if whole else 1.0
    minimum = float(day.opts[option])
    detail = f"{what} ({share:.0%}; minimum {minimum:.0%})"
    return CheckResult(name, table, column, int(whole - part), share >= minimum, detail, "warning", "load")


def _freshness(conn, day: _Day) -> CheckResult:
    """Retailers whose newest price is more than max_age_days before as_of."""
    last = _scalar_rows(
        conn,
        """
            SELECT r.retailer, max(d.date) FROM fact_price fp JOIN dim_listing l USING (listing_id)
            JOIN dim_retailer r USING (retailer_id) JOIN dim_date d ON d.date_key = fp.date_key
            GROUP BY r.retailer ORDER BY 1""",
        day.params,
    )
    as_of = day.as_of
    stale = [(r, dd) for r, dd in last if (as_of - dd).days > int(day.opts["max_age_days"])]
    detail = "; ".join(f"{r} last seen {dd} ({(as_of - dd).days} days before {as_of})" for r, dd in stale)
    return CheckResult("freshness", "fact_price", "ds", len(stale), not stale, detail, "warning", "load")


def _coverage(conn, day: _Day) -> CheckResult:
    """The share of yesterday's listings observed again on as_of."""
    ((expected, seen),) = _scalar_rows(
        conn,
        """
            SELECT count(*), count(t.listing_id) FROM fact_price y
            JOIN dim_date dy ON dy.date_key = y.date_key AND dy.date = :y
            LEFT JOIN (SELECT fp.listing_id FROM fact_price fp JOIN dim_date d ON d.date_key = fp.date_key
                       WHERE d.date = :d) t ON t.listing_id = y.listing_id""",
        day.params,
    )
    what = f"{seen} of {expected} listings seen on {day.params['y']} were observed on {day.as_of}"
    return _share_result("coverage", "fact_price", "listing_id", seen, expected, "min_coverage", day, what)


def _duplicate_listings(conn, day: _Day) -> CheckResult:
    """Listings of one retailer that share a URL."""
    dups = _scalar_rows(
        conn,
        """
            SELECT r.retailer, l.url, count(*) FROM dim_listing l JOIN dim_retailer r USING (retailer_id)
            WHERE l.url IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 3 DESC LIMIT 50""",
        day.params,
    )
    detail = "; ".join(f"{r} {u} ×{n}" for r, u, n in dups[:3])
    n_rows = sum(int(n) for *_, n in dups)
    return CheckResult("duplicate_listings", "dim_listing", "url", n_rows, not dups, detail, "critical", "load")


def _price_jump(conn, day: _Day) -> CheckResult:
    """Prices on as_of more than jump_ratio times above or below the listing's median over the history window."""
    jumps = _scalar_rows(
        conn,
        """
            WITH h AS (SELECT fp.listing_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY fp.price) AS med
                       FROM fact_price fp JOIN dim_date d ON d.date_key = fp.date_key
                       WHERE d.date >= :h AND d.date < :d AND fp.price > 0 GROUP BY fp.listing_id)
            SELECT r.retailer, l.item_id, fp.price::float8, h.med::float8
            FROM fact_price fp JOIN dim_date d ON d.date_key = fp.date_key AND d.date = :d
            JOIN h ON h.listing_id = fp.listing_id JOIN dim_listing l ON l.listing_id = fp.listing_id
            JOIN dim_retailer r ON r.retailer_id = l.retailer_id
            WHERE fp.price > 0 AND (fp.price / h.med > :k OR fp.price / h.med < 1.0 / :k)
            ORDER BY 1, 2""",
        {**day.params, "k": float(day.opts["jump_ratio"])},
    )
    detail = "; ".join(f"{r} {i}: {pr:,.2f} vs median {m:,.2f} (×{pr / m:.1f})" for r, i, pr, m in jumps[:3])
    return CheckResult("price_jump", "fact_price", "price", len(jumps), not jumps, detail, "critical", "load")


def _currency_mismatch(conn, day: _Day) -> CheckResult:
    """Prices on as_of in another currency than expected (given, or the retailer's usual one)."""
    if day.expected_currencies:
        bad = _scalar_rows(
            conn,
            """
                SELECT r.retailer, fp.currency, count(*) FROM fact_price fp
                JOIN dim_date d ON d.date_key = fp.date_key AND d.date = :d
                JOIN dim_listing l USING (listing_id) JOIN dim_retailer r USING (retailer_id)
                WHERE fp.currency IS NOT NULL AND NOT (fp.currency = ANY(:cur)) GROUP BY 1, 2 ORDER BY 1, 2""",
            {**day.params, "cur": list(day.expected_currencies)},
        )
        usual = ", ".join(day.expected_currencies)
    else:
        bad = _scalar_rows(
            conn,
            """
                WITH m AS (SELECT l.retailer_id, mode() WITHIN GROUP (ORDER BY fp.currency) AS cur
                           FROM fact_price fp JOIN dim_listing l USING (listing_id)
                           JOIN dim_date d ON d.date_key = fp.date_key
                           WHERE d.date >= :h AND fp.currency IS NOT NULL GROUP BY 1)
                SELECT r.retailer, fp.currency, count(*) FROM fact_price fp
                JOIN dim_date d ON d.date_key = fp.date_key AND d.date = :d
                JOIN dim_listing l USING (listing_id) JOIN dim_retailer r USING (retailer_id)
                JOIN m ON m.retailer_id = l.retailer_id
                WHERE fp.currency IS NOT NULL AND fp.currency <> m.cur GROUP BY 1, 2 ORDER BY 1, 2""",
            day.params,
        )
        usual = "the retailer's usual currency"
    detail = "; ".join(f"{r}: {n} rows in {c} (expected {usual})" for r, c, n in bad)
    n_rows = sum(int(n) for *_, n in bad)
    return CheckResult("currency_mismatch", "fact_price", "currency", n_rows, not bad, detail, "critical", "load")


def _match_coverage(conn, day: _Day) -> CheckResult:
    """The share of our products with a matched competitor price on as_of."""
    ((n_prod, covered),) = _scalar_rows(
        conn,
        f"""
            SELECT (SELECT count(*) FROM dim_product),
                   (SELECT count(DISTINCT pm.product_id) FROM product_match pm
                    JOIN fact_price fp ON fp.listing_id = pm.listing_id
                    JOIN dim_date d ON d.date_key = fp.date_key AND d.date = :d
                    WHERE pm.status {MATCHED})""",
        day.params,
    )
    what = f"{covered} of {n_prod} products have a matched competitor price on {day.as_of}"
    return _share_result(
        "match_coverage", "product_match", "product_id", covered, n_prod, "min_match_coverage", day, what
    )


def _extraction_rate(conn, day: _Day) -> CheckResult:
    """Shops whose share of watched pages with an extracted price collapsed on as_of against their recent days
    (scrape.health.shop_extraction_drop over watch_fetch: a layout change, not a delisted product)."""
    from priceintel.scrape.health import EXTRACTION_DROP, shop_extraction_drop

    rows = _scalar_rows(
        conn,
        """
            SELECT w.retailer, f.fetched_at, f.outcome FROM watch_fetch f JOIN watch w USING (watch_id)
            WHERE f.fetched_at >= CAST(:h AS date) AND f.fetched_at < CAST(:d AS date) + 1""",
        {**day.params, "h": day.as_of - timedelta(days=int(day.opts["extraction_baseline_days"]) + 1)},
    )
    fetches = pd.DataFrame(rows, columns=["retailer", "fetched_at", "outcome"])
    drops = (
        shop_extraction_drop(
            fetches,
            ratio=float(day.opts["extraction_drop_ratio"]),
            baseline_days=int(day.opts["extraction_baseline_days"]),
            as_of=day.as_of,
        )
        if len(fetches)
        else pd.DataFrame(columns=["message", "fetches", "ok"])
    )
    detail = "; ".join(drops["message"])
    failed = int((drops["fetches"] - drops["ok"]).sum()) if len(drops) else 0
    return CheckResult(EXTRACTION_DROP, "watch_fetch", "outcome", failed, drops.empty, detail, "warning", "load")


#: the checks after each load, in report order
SQL_CHECKS = (
    _freshness,
    _coverage,
    _duplicate_listings,
    _price_jump,
    _currency_mismatch,
    _match_coverage,
    _extraction_rate,
)

#: warnings that still notify every channel (a shop's extractor broke: someone must look today)
NOTIFY_WARNINGS = frozenset({"extraction_rate_drop"})


def sql_checks(
    engine, as_of=None, expected_currencies: tuple[str, ...] | None = None, **overrides
) -> list[CheckResult]:
    """Checks on the database after a load, for day as_of (default: the newest day in fact_price).

    freshness (per retailer), coverage (listings seen yesterday seen today), duplicate_listings,
    price_jump (×jump_ratio against the listing's median), currency_mismatch (against the retailer's
    usual currency, or expected_currencies), match_coverage (our products with a matched observation),
    extraction_rate_drop (a shop's share of watched pages with a price fell below extraction_drop_ratio × its
    median over the previous extraction_baseline_days days).
    """
    import sqlalchemy as sa

    opts = {**SQL_DEFAULTS, **overrides}
    unknown = set(overrides) - set(SQL_DEFAULTS)
    if unknown:
        raise QualityError(f"unknown SQL check option(s) {sorted(unknown)}; known: {sorted(SQL_DEFAULTS)}")
    with engine.connect() as conn:
        if as_of is None:
            as_of = conn.execute(
                sa.text("SELECT max(d.date) FROM fact_price fp JOIN dim_date d ON d.date_key = fp.date_key")
            ).scalar()
        if as_of is None:
            return [CheckResult("has_data", "fact_price", None, 0, False, "fact_price is empty", "critical", "load")]
        as_of = pd.Timestamp(as_of).date()
        p = {"d": as_of, "y": as_of - timedelta(days=1), "h": as_of - timedelta(days=int(opts["history_days"]))}
        day = _Day(as_of, p, opts, expected_currencies)
        return [check(conn, day) for check in SQL_CHECKS]


def store_results(engine, results: list[CheckResult], run_key: str) -> int:
    """Insert check results into quality_result under run_key; returns the row count."""
    import sqlalchemy as sa

    rows = [
        {
            "k": run_key,
            "stage": r.stage or "load",
            "n": r.name,
            "t": r.table,
            "c": r.column,
            "s": r.severity if r.severity in ("warning", "critical") else "critical",
            "p": bool(r.passed),
            "f": int(r.failed_rows),
            "d": r.detail,
        }
        for r in results
    ]
    if rows:
        with engine.begin() as conn:
            conn.execute(
                sa.text("""
                INSERT INTO quality_result (run_key, stage, check_name, table_name, column_name, severity, passed,
                                            failed_rows, detail)
                VALUES (:k, :stage, :n, :t, :c, :s, :p, :f, :d)"""),
                rows,
            )
    return len(rows)


def critical_failures(results: list[CheckResult]) -> list[CheckResult]:
    """The failed checks whose severity is critical."""
    return [r for r in results if not r.passed and r.severity == "critical"]


def render_report(engine, path, runs: int = 10) -> Path:
    """HTML quality report: the latest run's checks, then pass/fail counts of the last `runs` runs."""
    import html

    import sqlalchemy as sa

    with engine.connect() as conn:
        hist = pd.read_sql(
            sa.text("""
            SELECT run_key, min(checked_at) AS checked_at, count(*) AS checks,
                   count(*) FILTER (WHERE NOT passed) AS failed,
                   count(*) FILTER (WHERE NOT passed AND severity = 'critical') AS critical
            FROM quality_result GROUP BY run_key ORDER BY 2 DESC LIMIT :n"""),
            conn,
            params={"n": runs},
        )
        latest = pd.read_sql(
            sa.text("""
            SELECT stage, check_name, severity, passed, failed_rows, table_name, column_name, detail
            FROM quality_result WHERE run_key = :k ORDER BY passed, severity, stage, check_name"""),
            conn,
            params={"k": hist["run_key"].iloc[0] if len(hist) else ""},
        )

    def table(df: pd.DataFrame, cls: str) -> str:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
        body = []
        for rec in df.to_dict("records"):
            state = "" if "passed" not in rec else ("pass" if rec["passed"] else f"fail {rec['severity']}")
            body.append(
                f'<tr class="{state}">'
                + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in rec.values())
                + "</tr>"
            )
        return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'

    run = html.escape(str(hist["run_key"].iloc[0])) if len(hist) else "none"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Data quality</title><style>
body {{ font-family: sans-serif; max-width: 70em; margin: 1em auto; }}
table {{ border-collapse: collapse; width: 100%; font-size: 14px; margin-bottom: 2em; }}
th, td {{ padding: 3px 6px; border-bottom: 1px solid #ddd; text-align: left; }}
tr.fail.critical {{ background: #fdd; }} tr.fail.warning {{ background: #ffe9c2; }}
tr.pass td:nth-child(4) {{ color: #070; }}
</style></head><body><h1>Data quality</h1><h2>Latest run: {run}</h2>{table(latest, "checks")}
<h2>Recent runs</h2>{table(hist, "runs")}</body></html>"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
