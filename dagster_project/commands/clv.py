"""`crm-warehouse clv`: customer lifetime value tools.

`crm-warehouse clv backtest` fits BG/NBD + Gamma-Gamma on a calibration period of any
transactions file and measures the forecast against a holdout period. The work is done by
`ml.clv.backtest`, which takes a DataFrame; this module only reads the file and reports.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import pandas as pd

    from ml.clv import BacktestResult

SEPARATORS = {",": ",", ";": ";", "|": "|", "tab": "\t", "\\t": "\t", "\t": "\t", "whitespace": r"\s+"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


@click.group()
def clv() -> None:
    """Customer lifetime value tools (BG/NBD + Gamma-Gamma)."""


@clv.command()
@click.option(
    "--transactions",
    "path",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV/TSV/whitespace-separated text file, or Parquet (.parquet/.pq).",
)
@click.option(
    "--warehouse",
    "from_warehouse",
    is_flag=True,
    help="Use the warehouse's own consumption transactions (marts.fct_transactions, read-only) "
    "instead of --transactions; the column options are then not needed.",
)
@click.option("--customer-col", default=None, help="Column identifying the customer.")
@click.option("--date-col", default=None, help="Column with the transaction date or timestamp.")
@click.option("--amount-col", default=None, help="Column with the signed amount (refunds negative).")
@click.option("--calibration-end", required=True, help="Last day of the calibration period (YYYY-MM-DD, inclusive).")
@click.option("--holdout-end", required=True, help="Last day of the holdout period (YYYY-MM-DD, inclusive).")
@click.option(
    "--date-format", default=None, help="strftime format of the date column, e.g. %Y%m%d (default: inferred)."
)
@click.option(
    "--sep",
    default=None,
    help="Field separator of a text file: ',', ';', '|', 'tab' or 'whitespace' (default: sniffed).",
)
@click.option(
    "--names",
    default=None,
    help="Comma-separated column names for a text file without a header row (e.g. id,sample_id,date,cds,amount).",
)
@click.option(
    "--time-unit",
    type=click.Choice(["weeks", "days"]),
    default="weeks",
    show_default=True,
    help="Unit of recency, T and the model's alpha.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a report.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write a PNG of cumulative forecast vs actual repeat purchases by week.",
)
def backtest(
    path: Path | None,
    from_warehouse: bool,
    customer_col: str | None,
    date_col: str | None,
    amount_col: str | None,
    calibration_end: str,
    holdout_end: str,
    date_format: str | None,
    sep: str | None,
    names: str | None,
    time_unit: str,
    as_json: bool,
    chart: Path | None,
) -> None:
    """Fit on transactions up to CALIBRATION-END and forecast repeat purchases up to HOLDOUT-END.

    Same-day purchases of a customer count as one purchase; refund rows (negative amounts) net
    against spend. Reports the fitted parameters, the aggregate holdout forecast against the
    actual repeat purchases, per-customer error and correlation, forecast vs actual by
    calibration frequency (0..6, 7+) and the AUC of expected purchases for buying again.
    """
    from ml.clv import backtest as run_backtest
    from ml.clv import plot_cumulative

    if from_warehouse == (path is not None):
        raise click.UsageError("give either --transactions FILE (with the column options) or --warehouse")
    if from_warehouse:
        path, frame = warehouse_transactions()
        customer_col, date_col, amount_col = "customer_id", "txn_date", "consumption_amount"
    else:
        missing = [n for n, v in (("--customer-col", customer_col), ("--date-col", date_col),
                                  ("--amount-col", amount_col)) if not v]
        if missing:
            raise click.UsageError(f"--transactions needs {', '.join(missing)}")
        frame = read_transactions(path, sep=sep, names=names, text_columns=(customer_col, date_col))
    try:
        result = run_backtest(
            frame,
            customer_col=customer_col,
            date_col=date_col,
            amount_col=amount_col,
            calibration_end=calibration_end,
            holdout_end=holdout_end,
            date_format=date_format,
            time_unit=time_unit,
        )
    except ValueError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    if chart is not None:
        chart.parent.mkdir(parents=True, exist_ok=True)
        plot_cumulative(result, chart)
    if not result.bgnbd.converged:
        click.echo(f"warning: the BG/NBD fit did not converge: {result.bgnbd.message}", err=True)
    if result.gamma_gamma is not None and not result.gamma_gamma.converged:
        click.echo(f"warning: the Gamma-Gamma fit did not converge: {result.gamma_gamma.message}", err=True)
    if as_json:
        payload = result.to_dict()
        payload["transactions"] = str(path)
        payload["chart"] = None if chart is None else str(chart)
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(format_report(result, path, chart))


def warehouse_transactions() -> tuple[Path, pd.DataFrame]:
    """Consumption transactions (purchases positive, refunds negative) from the analysts' published
    marts if they exist, else from the build warehouse; opened read-only either way."""
    import duckdb

    from dagster_project import settings

    for path in (settings.published_path(), settings.warehouse_path()):
        if not path.exists():
            continue
        con = duckdb.connect(str(path), read_only=True)
        try:
            tables = {r[0] for r in con.execute(
                "select table_schema || '.' || table_name from information_schema.tables").fetchall()}
            table = next((t for t in ("marts.fct_transactions", "main.fct_transactions") if t in tables), None)
            if table is None:
                continue
            frame = con.execute(
                f"select customer_id, txn_date, consumption_amount::double as consumption_amount "
                f"from {table} where is_consumption"
            ).fetch_df()
            return path, frame
        finally:
            con.close()
    raise click.ClickException(
        f"no fct_transactions found in {settings.published_path()} or {settings.warehouse_path()}: "
        "run the nightly job first (crm-warehouse run)"
    )


def read_transactions(
    path: Path, *, sep: str | None = None, names: str | None = None, text_columns: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Read a Parquet or delimited text file; `text_columns` are kept as text (ids with leading zeros)."""
    import pandas as pd

    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise click.ClickException(f"{path}: cannot read as Parquet: {exc}") from exc
    separator = _separator(path, sep)
    column_names = [n.strip() for n in names.split(",")] if names else None
    if column_names is not None and len(set(column_names)) != len(column_names):
        raise click.ClickException(f"--names has a repeated column name: {names}")
    dtype = {c: str for c in text_columns}
    try:
        frame = pd.read_csv(
            path,
            sep=separator,
            header=None if column_names else 0,
            names=column_names,
            dtype=dtype,
            engine="python" if separator == r"\s+" else "c",
            skipinitialspace=True,
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise click.ClickException(f"{path}: cannot parse with separator {separator!r}: {exc}") from exc
    missing = [c for c in text_columns if c not in frame.columns]
    if missing:
        hint = "; if the file has no header row, name its columns with --names" if not column_names else ""
        raise click.ClickException(f"{path}: no column(s) {missing}; columns are {list(frame.columns)}{hint}")
    return frame


def _separator(path: Path, sep: str | None) -> str:
    if sep is not None:
        try:
            return SEPARATORS[sep]
        except KeyError:
            raise click.BadParameter(
                f"{sep!r}; use one of ',', ';', '|', 'tab', 'whitespace'", param_hint="--sep"
            ) from None
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        sample = fh.read(65536)
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    if not lines:
        raise click.ClickException(f"{path}: the file is empty")
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        pass
    widths = {len(line.split()) for line in lines}
    if len(widths) == 1 and widths.pop() > 1:
        return r"\s+"
    raise click.ClickException(
        f"{path}: cannot tell the field separator; pass --sep (',', ';', '|', 'tab', 'whitespace')"
    )


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None or math.isnan(value) else format(value, spec)


def format_report(result: BacktestResult, path: Path, chart: Path | None) -> str:
    s, d, h, pc = result.settings, result.data, result.holdout, result.per_customer
    unit = s["time_unit"]
    bg = result.bgnbd.params
    bg_status = "converged" if result.bgnbd.converged else "NOT CONVERGED"
    lines = [f"CLV backtest of {path}"]
    lines.append(
        f"  calibration {d['calibration_start']} .. {s['calibration_end']}: {d['n_customers']:,} customers, "
        f"{d['n_repeat_buyers']:,} repeat buyers ({d['n_transactions']:,} transaction rows in the file)"
    )
    lines.append(f"  holdout after {s['calibration_end']} .. {s['holdout_end']} ({s['holdout_length']:g} {unit})")
    lines.append("")
    lines.append(
        f"BG/NBD       r={bg.r:.4f}  alpha={bg.alpha:.4f} ({unit})  a={bg.a:.4f}  b={bg.b:.4f}  "
        f"log-likelihood {result.bgnbd.log_likelihood:,.2f}  {bg_status}"
    )
    gg = result.gamma_gamma
    if gg is None:
        lines.append("Gamma-Gamma  not fitted (too few repeat buyers with positive spend)")
    else:
        gg_status = "converged" if gg.converged else "NOT CONVERGED"
        lines.append(
            f"Gamma-Gamma  p={gg.params.p:.4f}  q={gg.params.q:.4f}  gamma={gg.params.gamma:.4f}  "
            f"on {gg.n_customers:,} repeat buyers  {gg_status}"
        )
    lines.append("")
    lines.append(
        f"Holdout repeat purchases: forecast {h['forecast_repeat_purchases']:,.1f}, actual "
        f"{h['actual_repeat_purchases']:,.0f} ({_fmt(100 * h['relative_error'], '+.1f')}%)"
    )
    lines.append(
        f"Per customer: MAE {_fmt(pc['mae'], '.3f')}, RMSE {_fmt(pc['rmse'], '.3f')}, "
        f"correlation {_fmt(pc['correlation'], '.3f')}"
    )
    lines.append(f"AUC of expected purchases for buying again in the holdout: {_fmt(result.auc, '.3f')}")
    lines.append("")
    lines.append("By calibration frequency (mean repeat purchases per customer in the holdout):")
    lines.append(f"  {'x':>3}  {'customers':>9}  {'forecast':>8}  {'actual':>8}")
    for row in result.by_frequency.itertuples(index=False):
        forecast, actual = _fmt(row.forecast_mean, "8.3f"), _fmt(row.actual_mean, "8.3f")
        lines.append(f"  {row.frequency:>3}  {row.customers:>9,}  {forecast:>8}  {actual:>8}")
    if result.spend is not None:
        sp = result.spend
        lines.append("")
        lines.append(
            f"Holdout revenue: forecast {sp['forecast_revenue']:,.2f}, actual {sp['actual_revenue']:,.2f}; "
            f"order value MAE {_fmt(sp['aov_mae'], '.2f')} over {sp['holdout_buyers']:,} holdout buyers"
        )
    if chart is not None:
        lines.append("")
        lines.append(f"Chart: {chart}")
    return "\n".join(lines)
