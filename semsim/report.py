"""``semsim report``: write a results page (``docs/results.md``) from the results of figure scenarios.

Reads what the figure scenarios and the training recipe wrote under ``results/`` (a missing one
becomes a "not run yet" line with its command), draws their plots into ``figures/`` beside the
page, and writes one Markdown page: the shipped weights and how they were trained, the training
curves, each figure's tables and plots, visual grids, the timings, and an account of where the
highlighted method is ahead of or behind each other method, with the numbers computed from the
results. Which figures, in which order, with which prose, is data: a layout file
(:class:`~semsim.report_layout.Layout`; this repository's is ``docs/report.yaml``)::

    semsim run scenarios/fig5.yaml        # ... and the other figure scenarios
    semsim report                         # docs/results.md + docs/figures/*.png
"""
from __future__ import annotations

import json
import math
from collections import Counter
import shutil
import tempfile
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .codec import parse_ratio
from .files import atomic_file
from .results import ENVELOPE_MCS, aggregate, series_name, num, read_csv, with_envelope
from .report_layout import DEFAULT_LAYOUT, SECTIONS, Figure, Grid, load_layout

def _fmt(value: float, digits: int = 2) -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}f}"


def _series(rows: list[dict[str, str]], metric: str) -> dict[tuple[str, str, str], dict[float, float]]:
    """(channel, method label, mcs) → {snr: mean}, with the best-MCS envelope of digital methods."""
    by = ("channel", "label", "mcs", "snr_db")
    for r in rows:
        r["label"] = series_name(r)
    agg = with_envelope(aggregate(rows, by, metric), by)
    out: dict[tuple[str, str, str], dict[float, float]] = {}
    for (ch, label, mcs, snr), (mean, _, _) in agg.items():
        out.setdefault((ch, label, mcs), {})[float(snr)] = mean
    return out


def _versus(name: str, diffs: dict[float, float], unit: str, digits: int) -> str:
    """"ahead of X by a … b dB" / "behind X by …" / "ahead of X at 1–7 dB, behind at 10–13 dB"."""
    def span(d: dict[float, float]) -> str:
        lo, hi = min(d.values()), max(d.values())
        u = f" {unit}" if unit else ""
        return f"{lo:+.{digits}f}{u}" if lo == hi else f"{lo:+.{digits}f} … {hi:+.{digits}f}{u}"

    def snrs(d: dict[float, float]) -> str:
        return ", ".join(f"{s:g}" for s in d) + " dB"

    ahead = {s: v for s, v in diffs.items() if v > 0}
    behind = {s: v for s, v in diffs.items() if v <= 0}
    if not behind:
        return f"ahead of {name} ({span(ahead)})"
    if not ahead:
        return f"behind {name} ({span(behind)})"
    return f"ahead of {name} at SNR {snrs(ahead)} ({span(ahead)}), behind at {snrs(behind)} ({span(behind)})"


def _short(label: str) -> str:
    return label.split(" (")[0]


def _wide_table(series, channel: str, snrs: list[float], digits: int = 2,
                extra: dict[str, dict[float, float]] | None = None, highlight: str = "") -> list[str]:
    """One row per method (digital: one per MCS and the best-MCS envelope), one column per SNR;
    ``highlight``'s rows first, in bold."""
    def top(label: str) -> bool:
        return bool(highlight) and label.startswith(highlight)

    head = "| method | " + " | ".join(f"{s:g} dB" for s in snrs) + " |"
    lines = [head, "|---|" + "---|" * len(snrs)]
    keys = sorted((k for k in series if k[0] == channel),
                  key=lambda k: (not top(k[1]), k[1], k[2] == ENVELOPE_MCS, k[2]))
    for _, label, mcs in keys:
        vals = series[(channel, label, mcs)]
        name = label + (f" {mcs}" if mcs else "")
        if top(label):
            name = f"**{name}**"
        lines.append(f"| {name} | " + " | ".join(_fmt(vals.get(s, math.nan), digits) for s in snrs) + " |")
    for name, vals in (extra or {}).items():
        lines.append(f"| *{name}* | " + " | ".join(_fmt(vals.get(s, math.nan), digits) for s in snrs) + " |")
    return lines


def _anchors(shared_csv: Path | None) -> dict[str, dict[float, float]]:
    from .plots import load_anchors

    try:
        rows = load_anchors(shared_csv)
    except Exception:  # noqa: BLE001 - published curves are optional
        return {}
    out: dict[str, dict[float, float]] = {}
    for r in rows:
        if r["channel"] == "awgn" and abs(num(r["cbr"]) - 1 / 16) < 1e-9:
            out.setdefault(r["method"], {})[num(r["snr_db"])] = num(r["psnr_db"])
    return out


def ablation_table(rows: list[dict[str, Any]]) -> list[str]:
    """The Markdown table of ``benchmarks/ablation.py`` result rows (its ``--json``): one line per
    arm with its crops and crop size, PSNR at 1 / 7 / 13 dB and mIoU at 7 dB. A continuation arm
    (``init`` other than ``scratch``) is preceded, once per method, by the scores of the weights it
    started from; an arm stopped before its last step is marked so."""

    def row(r: dict[str, Any], arm: str, what: str, images: int, pre: str = "") -> str:
        miou = r.get(f"{pre}miou_7", math.nan)
        crop = int(round((r["pixels"] / r["images"]) ** 0.5))
        crops = f"{images:,d} × {crop} px{'' if r.get('done', True) else ' (stopped)'}" if images else "0"
        return (f"| {r['method']} | {arm} | {what} | {crops} | "
                f"{_fmt(r.get(f'{pre}psnr_1', math.nan))} | {_fmt(r.get(f'{pre}psnr_7', math.nan))} | "
                f"{_fmt(r.get(f'{pre}psnr_13', math.nan))} | {'' if math.isnan(miou) else f'{miou:.3f}'} |")

    lines = ["| method | arm | what | crops | PSNR 1 dB | PSNR 7 dB | PSNR 13 dB | mIoU 7 dB |",
             "|---|---|---|---|---|---|---|---|"]
    started = set()
    for r in rows:
        init = r.get("init", "scratch")
        if init != "scratch" and (r["method"], init) not in started:
            started.add((r["method"], init))
            lines.append(row(r, f"{init} weights", "where the continuation arms start", 0, "start_"))
        lines.append(row(r, r["arm"] + ("" if init == "scratch" else f", from {init}"), r.get("what", ""),
                         r["images"]))
    return lines


class Report:
    """Collects the sections of ``docs/results.md``.

    :param results: the ``results/`` folder the scenarios wrote to.
    :param out: the Markdown file to write.
    """

    def __init__(self, results: str | Path = "results", out: str | Path = "docs/results.md",
                 anchors: str | Path | None = None, layout: str | Path = DEFAULT_LAYOUT):
        self.layout = load_layout(layout)
        self.results, self.out = Path(results), Path(out)
        self.figures = self.out.parent / "figures"
        self.anchors = anchors
        self.lines: list[str] = []
        self.facts: dict[str, Any] = {}

    # --- helpers --------------------------------------------------------------------------------
    def _img(self, src: Path, name: str, alt: str) -> None:
        """Copy a picture beside the page; photo grids over 600 kB become a JPEG at most 1800 px wide
        (the repository keeps them small; the full-resolution PNG stays under results/)."""
        if not src.is_file():
            return
        self.figures.mkdir(parents=True, exist_ok=True)
        if src.stat().st_size > 600_000:
            from PIL import Image

            name = Path(name).with_suffix(".jpg").name
            image = Image.open(src).convert("RGB")
            if image.width > 1800:
                image = image.resize((1800, round(image.height * 1800 / image.width)), Image.LANCZOS)
            with atomic_file(self.figures / name) as tmp:
                image.save(tmp, format="JPEG", quality=85, optimize=True)
        else:
            with atomic_file(self.figures / name) as tmp:
                shutil.copyfile(src, tmp)
        self.lines += [f"![{alt}](figures/{name})", ""]

    def _plots(self, csv: Path, fig: Figure) -> list[Path]:
        """Draw the figure's plots and copy beside the page the ones it shows: its metric against
        SNR (against CBR for the CBR sweep); PNG only."""
        from .plots import plot_results

        shown = f"{fig.metric}_vs_cbr_" if fig.key == "cbr" else f"{fig.metric}_vs_snr_"
        kept = []
        with tempfile.TemporaryDirectory() as tmp:
            for p in plot_results(csv, tmp, anchors=self.anchors):
                if p.suffix == ".png" and p.name.startswith(shown):
                    self.figures.mkdir(parents=True, exist_ok=True)
                    with atomic_file(self.figures / f"{fig.key}_{p.name}") as t:
                        shutil.copyfile(p, t)
                    kept.append(self.figures / f"{fig.key}_{p.name}")
        return kept

    def _missing(self, scenario: str, what: str = "run") -> None:
        self.lines += [f"*Not run yet:* `semsim {what} {scenario}`.", ""]

    # --- sections -------------------------------------------------------------------------------
    def weights(self) -> None:
        from .info import build_meta
        from .weights import cumulative, manifest

        self.lines += ["## Shipped weights and their training", ""]
        shipped = manifest()
        if not shipped:
            self.lines += ["No weights ship yet (`semsim train RECIPE`, then `semsim ship OUTPUT`).", ""]
            return
        recipes = sorted({e.get("recipe", "") for e in shipped.values()})
        self.lines += [self.layout.weights.format(recipes=", ".join(f"`{r}`" for r in recipes)), "",
                       "| weights | method | parameters | bf16 MiB | steps × batch | crop | crops seen (rounds) | SNR (dB) "
                       "| channel | device | precision | wall time | validation at its SNRs |",
                       "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        total = 0.0
        for name, e in shipped.items():
            params = sum(p.numel() for p in build_meta(e["method"], e.get("preset", "small")).parameters())
            val = self._validation(e)
            snr = e.get("train_snr_db", ["", ""])
            total += float(e.get("wall_seconds", 0))
            self.lines.append(
                f"| `{name}` | {e.get('label', e['method'])} | {params:,d} | {e['bytes'] / 2**20:.2f} | "
                f"{e.get('steps')} × {e.get('batch_size')} | {e.get('crop')} | "
                f"{cumulative(e)['images']:,d} ({len(cumulative(e)['rounds'])}) | {snr[0]:g}–{snr[1]:g} | "
                f"{e.get('train_channel')} | {e.get('device_name', e.get('device'))} | {e.get('precision')} | "
                f"{float(e.get('wall_seconds', 0)):.0f} s | {val} |")
        self.facts["train_total_s"] = total
        self.lines += ["", f"Training all {len(shipped)} shipped weights took {total:.0f} s ({total / 60:.1f} min) "
                           f"of training-loop time "
                           f"(validation included).", ""]
        if self.layout.curves:
            self._img(self.results / self.layout.curves, "train_curves.png", "training curves")

    def ablation(self) -> None:
        """The training-recipe ablation at equal images seen (``benchmarks/ablation.py --json
        results/ablation.json``; rows of several runs may be concatenated). A continuation arm
        (``init: shipped``) is preceded once by the scores of the weights it started from. Without
        the file, the section of the page being replaced is kept."""
        path = self.results / "ablation.json"
        if not path.is_file():
            self._keep_section("## Training recipe: ablation")
            return
        rows = json.loads(path.read_text())
        self.lines += ["## Training recipe: ablation at equal images seen", "",
                       self.layout.ablation.format(path=path), "", *ablation_table(rows), ""]

    def _keep_section(self, heading: str) -> None:
        """Keep the section of the page being replaced whose heading starts with ``heading``."""
        if not self.out.is_file():
            return
        old = self.out.read_text().splitlines()
        start = next((i for i, line in enumerate(old) if line.startswith(heading)), None)
        if start is not None:
            end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
            self.lines += old[start:end]

    def digital_receiver(self) -> None:
        """The digital receiver's options measured (``benchmarks/digital_receiver.py --markdown
        results/digital_receiver.md``), spliced in as written; without that file the section of
        the page being replaced is kept (it is measured by hand, not by a figure scenario)."""
        path = self.results / "digital_receiver.md"
        if path.is_file():
            self.lines += path.read_text().strip().splitlines() + [""]
        else:
            self._keep_section("## The digital receiver")

    def _validation(self, entry: dict[str, Any]) -> str:
        from .scenario import safe_name

        shipped = (entry.get("validation") or {}).get("score")
        if shipped:
            snrs = "/".join(f"{v:g}" for v in entry["validation"].get("snr_db", []))
            return ", ".join(f"{v:.2f} dB" if t == "reconstruction" else f"mIoU {v:.3f}"
                             for t, v in shipped.items()) + f" (ship's set, mean over {snrs} dB)"
        folder = _recipe_output(entry.get("recipe", ""))
        if folder is None:
            return ""
        path = folder / safe_name(entry.get("label", "")) / "validation.csv"
        if not path.is_file():
            return ""
        rows = read_csv(path)
        last = max(int(num(r["step"])) for r in rows)
        cells = []
        for r in sorted((r for r in rows if int(num(r["step"])) == last), key=lambda r: num(r["snr_db"])):
            p, m = num(r.get("psnr")), num(r.get("miou"))
            cells.append(" / ".join(x for x in (f"{p:.1f} dB" if math.isfinite(p) else "",
                                                f"mIoU {m:.2f}" if math.isfinite(m) else "") if x))
        return ", ".join(cells)

    def figure(self, fig: Figure) -> None:
        self.lines += [f"## {fig.title}", "", fig.about + f" Scenario: `{fig.scenario}`.", ""]
        csv = self.results / fig.folder / "results.csv"
        if not csv.is_file():
            self._missing(fig.scenario)
            return
        rows = read_csv(csv)
        series = _series(rows, fig.metric)
        channels = sorted({k[0] for k in series}, key=_channel_order)
        prov = self._provenance(fig.folder)
        if fig.key == "cbr":
            self._cbr_table(rows)
        else:
            snrs = sorted({float(num(r["snr_db"])) for r in rows})
            for ch in channels:
                extra = None
                if fig.anchors and ch == "awgn":
                    extra = {k if "published" in k else f"{k} (published)": v
                             for k, v in _anchors(self.anchors).items()}
                per_point = max(Counter(r["point"] for r in rows if r["channel"] == ch).values())
                what = (f"mIoU over {per_point} images" if fig.metric == "miou"
                        else f"PSNR in dB, mean over {per_point} images")
                self.lines += [f"**{ch}** ({what})", ""]
                self.lines += _wide_table(series, ch, snrs, 3 if fig.metric == "miou" else 2, extra,
                                          self.layout.highlight) + [""]
        expected = len(_points(fig.scenario))
        done = len({r["point"] for r in rows})
        if done < expected:
            self.lines += [f"*Partial:* {done} of {expected} points have run (an interrupted sweep; "
                           f"`semsim run {fig.scenario}` resumes it).", ""]
        if prov:
            self.lines += [f"Run on {prov.get('device', '?')}, commit `{str(prov.get('git_commit', ''))[:12]}`.", ""]
        for p in self._plots(csv, fig):
            self.lines += [f"![{fig.title}](figures/{p.name})", ""]
        self.facts[fig.key] = series

    def _cbr_table(self, rows: list[dict[str, str]]) -> None:
        for r in rows:
            r["label"] = series_name(r)
        by = ("label", "mcs", "budget")
        agg = with_envelope(aggregate(rows, by, "psnr"), by)
        budgets = sorted({k[2] for k in agg}, key=lambda b: parse_ratio(b.split("=", 1)[1]))  # "cbr=1/48"
        self.lines += ["| method | " + " | ".join(b.replace("cbr=", "") for b in budgets) + " |",
                       "|---|" + "---|" * len(budgets)]
        for label, mcs in sorted({k[:2] for k in agg}):
            self.lines.append(f"| {label}{' ' + mcs if mcs else ''} | " + " | ".join(
                _fmt(agg.get((label, mcs, b), (math.nan,))[0]) for b in budgets) + " |")
        self.lines.append("")

    def _provenance(self, folder: str) -> dict[str, Any]:
        path = self.results / folder / "provenance.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def timings(self) -> None:
        self.lines += ["## Timings", ""]
        runs = []
        for folder in sorted(self.results.glob(self.layout.timed)) if self.layout.timed else ():
            prov = self._provenance(folder.name)
            last = prov.get("last_run") or {}
            if last.get("points_run"):
                runs.append(f"| `{folder.name}` | {prov.get('device', '?')} | {last['points_run']} | "
                            f"{last['wall_seconds']:.1f} s |")
        if runs:
            self.lines += [self.layout.timings, "",
                           "| results | device | points | wall time |", "|---|---|---|---|", *runs, ""]
        for name in ("throughput_gpu.json", "throughput_cpu.json"):
            path = self.results / name
            if path.is_file():
                rows = json.loads(path.read_text())
                r0 = rows[0]
                settings = list(r0.get("settings") or {r0.get("precision", "fp32"): r0["img_per_s"]})
                self.lines += [f"Training throughput, one optimiser step ({r0['device']}, {r0['crop']} px, batch "
                               f"{r0['batch']}; `benchmarks/train_throughput.py`), img/s per setting:", "",
                               "| method | parameters | " + " | ".join(settings) + " |",
                               "|---|---|" + "---|" * len(settings)]
                self.lines += [f"| {r['method']} | {r['parameters']:,d} | " +
                               " | ".join(str((r.get("settings") or {settings[0]: r["img_per_s"]})[s])
                                          for s in settings) + " |" for r in rows] + [""]

    def account(self) -> None:
        """Where the highlighted method is ahead or behind, with numbers computed from the results."""
        top = self.layout.highlight
        self.lines += [f"## Where {top} is ahead, where it is behind, and why", ""]
        said = False
        for group in self.layout.account:
            series: dict[tuple[str, str, str], dict[float, float]] = {}
            for key in group["figures"]:
                series.update(self.facts.get(key, {}))
            miou = any(getattr(self.layout.figure(k), "metric", "") == "miou" for k in group["figures"])
            for ch in sorted({k[0] for k in series}, key=_channel_order):
                g = next((v for k, v in series.items() if k[0] == ch and k[1].startswith(top)), None)
                if g is None:
                    continue
                parts = []
                for k, v in sorted(series.items()):
                    if k[0] != ch or k[1].startswith(top) or k[2] not in ("", ENVELOPE_MCS) or "capacity" in k[1]:
                        continue
                    diffs = {s: g[s] - v[s] for s in sorted(g) if s in v and math.isfinite(v[s])}
                    if diffs:
                        parts.append(_versus(f"{_short(k[1])}{' ' + k[2] if k[2] else ''}", diffs,
                                             "" if miou else "dB", 3 if miou else 1))
                self.lines.append(f"- **{group['what']}, {ch}:** {top} is " + "; ".join(parts) + ".")
                said = True
        if said:
            self.lines.append("")
        self.lines += self.layout.why.strip().splitlines() + [""]

    # --- the page -------------------------------------------------------------------------------
    def write(self) -> Path:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.lines = ["# Results", "", *self.layout.intro.format(now=now, results=self.results).strip().splitlines(), ""]
        for key in self.layout.sections:
            if key in SECTIONS:
                getattr(self, key)()
            elif (fig := self.layout.figure(key)) is not None:
                self.figure(fig)
            else:
                self.grid(self.layout.grid(key))
        with atomic_file(self.out) as tmp:
            tmp.write_text("\n".join(self.lines).rstrip() + "\n")
        return self.out

    def grid(self, g: Grid) -> None:
        self.lines += [f"## {g.title}", ""]
        src = self.results / g.folder / "grid.png"
        if not src.is_file():
            self._missing(g.scenario, "grid")
            return
        self._img(src, f"{g.key}.png", g.title)
        for other in sorted((self.results / g.folder).glob("grid_*.png")):  # other channels
            channel = other.stem.removeprefix("grid_")
            self.lines += [f"Over {channel} (`semsim grid {g.scenario} --channel {channel}`):", ""]
            self._img(other, f"{g.key}_{channel}.png", f"{g.title}, {channel}")


def _channel_order(channel: str) -> tuple[int, str]:
    """Page order of channels: AWGN, Rayleigh, TDL-A first, then the rest by name."""
    first = ("awgn", "rayleigh", "tdl-a")
    return (first.index(channel) if channel in first else len(first), channel)


@lru_cache(maxsize=None)
def _recipe_output(recipe: str) -> Path | None:
    """The output folder of a training recipe (loaded once per recipe), or None if it no longer loads."""
    from .scenario import load_scenario

    try:
        return Path(load_scenario(recipe).output)
    except Exception:  # noqa: BLE001 - a recipe that no longer loads: no validation column
        return None


def _points(scenario: str) -> list:
    from .scenario import load_scenario

    try:
        return load_scenario(scenario).points()
    except Exception:  # noqa: BLE001 - a figure whose weights are missing still reports its rows
        return []


def report(results: str | Path = "results", out: str | Path = "docs/results.md",
           anchors: str | Path | None = None, layout: str | Path = DEFAULT_LAYOUT) -> Path:
    """Write ``out`` (and its figures beside it in ``figures/``) as the YAML file ``layout`` says
    (:class:`~semsim.report_layout.Layout`; default ``docs/report.yaml`` in the working directory); returns its path."""
    return Report(results, out, anchors, layout).write()
