"""Writing, reading and summarising results CSVs: cells, rows appended as they come, files read
back (a torn last line dropped), means with 95 % confidence intervals, best-MCS envelopes, Markdown
tables. The runner, ``semsim train``, the plots (:mod:`semsim.plots`) and the CLI build on these.
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import headline_metrics

ENVELOPE_MCS = "best"


def format_cell(value: Any) -> str:
    """A CSV cell: ``""`` for None, ``true``/``false``, floats to 10 significant digits, ``nan``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.10g}"
    return str(value)


def csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """A whole CSV file (header and ``rows``, cells by :func:`format_cell`) as text."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: format_cell(r.get(k)) for k in columns})
    return buf.getvalue()


def append_row(path: str | Path, row: dict[str, Any], columns: Sequence[str]) -> None:
    """Append one row (the file's header already written) to a CSV file."""
    with open(path, "a", newline="") as f:
        f.write(",".join(format_cell(row.get(c)) for c in columns) + "\n")


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV that is appended to (``curve.csv``): none if the file is missing, and a torn
    last line (a process killed while appending) is dropped."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [r for r in csv.DictReader(text.splitlines()) if None not in r and None not in r.values()]


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a results CSV as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(value: str | float | None) -> float:
    """CSV cell → float (empty or unparsable → NaN)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def mean_ci(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, half-width of the 95 % t confidence interval, and count of the finite values."""
    from scipy.stats import t

    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, 0
    if v.size == 1:
        return float(v[0]), 0.0, 1
    half = float(t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return float(v.mean()), half, int(v.size)


def aggregate(rows: Iterable[dict[str, str]], by: Sequence[str], metric: str) -> dict[tuple, tuple[float, float, int]]:
    """Group rows by the columns ``by``; per group the mean, 95 % CI half-width and count of ``metric``.

    Failed transmissions are kept (with their fallback output's metric), never dropped.
    """
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        groups[tuple(series_name(r) if k == "method" else _key(k, r.get(k, "")) for k in by)].append(
            num(r.get(metric)))
    return {k: mean_ci(v) for k, v in groups.items()}


def series_name(row: dict[str, str]) -> str:
    """The method as tables and legends show it: learned codecs name their training channel
    ("GenSC (trained on awgn)"), so scoring on another channel is visible."""
    trained = row.get("train_channel") or ""
    return f"{row.get('method', '')} (trained on {trained})" if trained else row.get("method", "")


def _key(column: str, value: str) -> str:
    """Group key of a cell; numbers on the SNR axis compare as numbers ("10" == "10.000000")."""
    return f"{num(value):g}" if column == "snr_db" and value not in ("", None) else value


def with_envelope(agg: dict[tuple, tuple[float, float, int]], by: Sequence[str]) -> dict[tuple, tuple[float, float, int]]:
    """Add, for every group that differs only in ``mcs``, a best-MCS group (``mcs = "best"``)
    holding the highest mean over the MCS values (the envelope over the MCS table)."""
    if "mcs" not in by:
        return dict(agg)
    i = list(by).index("mcs")
    best: dict[tuple, tuple[float, float, int]] = {}
    for key, val in agg.items():
        if not key[i] or not math.isfinite(val[0]):
            continue
        env = key[:i] + (ENVELOPE_MCS,) + key[i + 1:]
        if env not in best or val[0] > best[env][0]:
            best[env] = val
    return {**agg, **best}


def summary_table(rows: list[dict[str, str]], metric: str | None = None, envelope: bool = True) -> str:
    """A Markdown table of ``metric`` (default: each task's headline metric, psnr of reconstruction
    rows and miou of segmentation ones, :func:`~semsim.metrics.headline_metrics`): one line per
    dataset/channel/budget/method/MCS, one column per SNR, cells ``mean ± CI``."""
    if not rows:
        return "(no rows)"
    if metric is None:
        parts = [summary_table(sel, m, envelope) for m in headline_metrics()
                 if (sel := [r for r in rows if math.isfinite(num(r.get(m)))])]
        return "\n\n".join(parts) or summary_table(rows, headline_metrics()[0], envelope)
    by = ("dataset", "channel", "budget", "method", "mcs", "snr_db")
    agg = aggregate(rows, by, metric)
    if envelope:
        agg = with_envelope(agg, by)
    snrs = sorted({k[-1] for k in agg}, key=float)
    lines = sorted({k[:-1] for k in agg}, key=lambda k: (k[:4], k[4] == ENVELOPE_MCS, k[4]))
    head = "| dataset | channel | budget | method | mcs | " + " | ".join(f"{float(s):g} dB" for s in snrs) + " |"
    out = [f"{metric} (mean ± 95 % CI over images)", "", head, "|" + "---|" * (5 + len(snrs))]
    for line in lines:
        cells = []
        for s in snrs:
            m, ci, _ = agg.get(line + (s,), (math.nan, math.nan, 0))
            cells.append("" if not math.isfinite(m) else f"{m:.2f} ± {ci:.2f}" if ci > 0 else f"{m:.2f}")
        out.append("| " + " | ".join(list(line) + cells) + " |")
    return "\n".join(out)


def ber_table(rows: list[dict[str, str]]) -> str:
    """A Markdown table of BER and BLER per channel/modulation/code rate/SNR."""
    head = "| channel | modulation | code_rate | Es/N0 dB | Eb/N0 dB | BER | BLER | bit errors |"
    out = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['channel']} | {r['modulation']} | {r['code_rate']} | {num(r['snr_db']):g} | "
                   f"{num(r['ebno_db']):.2f} | {num(r['ber']):.3e} | {num(r['bler']):.3e} | {r['bit_errors']} |")
    return "\n".join(out)


def is_ber(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and "modulation" in rows[0] and "ber" in rows[0]
