"""``semsim report``: write ``docs/results.md`` from the results of the figure scenarios.

Reads what the figure scenarios and the training recipe wrote under ``results/`` (a missing one
becomes a "not run yet" line with its command), draws their plots into ``docs/figures/``, and
writes one Markdown page: the shipped weights and how they were trained, the training curves,
Figs 4–7 with tables and plots, the PSNR-vs-CBR and train-SNR ≠ test-SNR plots, the timings, and
an account of where the paper's system (GenSC) is ahead of or behind each baseline, with the
numbers computed from the results::

    semsim run scenarios/fig5.yaml        # ... and the other figure scenarios
    semsim report                         # docs/results.md + docs/figures/*.png
"""
from __future__ import annotations

import json
import math
from collections import Counter
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .codec import parse_ratio
from .files import atomic_file
from .results import ENVELOPE_MCS, aggregate, method_label, num, read_csv, with_envelope

#: GenSC's label in results tables and plots
GENSC = "GenSC"


@dataclass(frozen=True)
class Figure:
    """One figure scenario: its key, scenario file, results folder, metric and what it shows."""

    key: str
    scenario: str
    folder: str
    metric: str
    title: str
    about: str


FIGURES = (
    Figure("fig4", "scenarios/fig4.yaml", "fig4", "psnr", "Fig. 4: Kodak 224×224 crops, PSNR vs SNR",
           "The 24 Kodak photos centre-cropped to 224×224, CBR 1/16 (9,408 channel uses per crop)."),
    Figure("fig5", "scenarios/fig5.yaml", "fig5", "psnr", "Fig. 5: Kodak at full size, PSNR vs SNR",
           "The 24 Kodak photos at 768×512 and 512×768, CBR 1/16 (73,728 channel uses per photo)."),
    Figure("fig7", "scenarios/fig7.yaml", "fig7", "miou", "Fig. 7: CamVid test, mIoU vs SNR",
           "The CamVid test split (480×360, 11 classes; the 173 of SegNet's 233 test pairs that "
           "../shared holds), 10,000 channel uses per image for every method. mIoU over the whole "
           "split (one confusion matrix per point)."),
    Figure("fig7_fading", "scenarios/fig7_fading.yaml", "fig7_fading", "miou",
           "Fig. 7 over fading channels: CamVid test, mIoU vs SNR",
           "The first 40 CamVid test images over Rayleigh block fading and TDL-A (weights trained on AWGN), "
           "10,000 channel uses per image. mIoU over those images (one confusion matrix per point)."),
    Figure("cbr", "scenarios/cbr_sweep.yaml", "cbr_sweep", "psnr", "PSNR vs CBR at SNR 10 dB",
           "The first 8 Kodak photos, AWGN, SNR 10 dB, CBR 1/48 … 1/8; the learned models were trained "
           "at CBR 1/16."),
    Figure("snr", "scenarios/snr_mismatch.yaml", "snr_mismatch", "psnr", "Train SNR ≠ test SNR",
           "Deep JSCC and GenSC trained at a fixed 10 dB against the same recipe over 0–20 dB (CPU, "
           "800 steps of batch 8), scored on the first 6 Kodak photos over 0–20 dB, AWGN, CBR 1/16."),
)
GRIDS = (("fig6", "scenarios/fig6.yaml", "fig6", "Fig. 6: two Kodak photos at SNR 18 dB (CBR 1/16)"),
         ("fig7_grid", "scenarios/fig7_grid.yaml", "fig7", "Fig. 7 (visual): CamVid test at SNR 10 dB, "
                                                            "10,000 channel uses"),
         ("voc_grid", "scenarios/voc_grid.yaml", "voc", "PASCAL VOC pairs at SNR 10 dB, 10,000 channel uses "
                                                        "(CamVid-trained segmentation: other classes, not scored)"))


def _fmt(value: float, digits: int = 2) -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}f}"


def _series(rows: list[dict[str, str]], metric: str) -> dict[tuple[str, str, str], dict[float, float]]:
    """(channel, method label, mcs) → {snr: mean}, with the best-MCS envelope of digital methods."""
    by = ("channel", "label", "mcs", "snr_db")
    for r in rows:
        r["label"] = method_label(r)
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
                extra: dict[str, dict[float, float]] | None = None) -> list[str]:
    """One row per method (digital: one per MCS and the best-MCS envelope), one column per SNR."""
    head = "| method | " + " | ".join(f"{s:g} dB" for s in snrs) + " |"
    lines = [head, "|---|" + "---|" * len(snrs)]
    keys = sorted((k for k in series if k[0] == channel), key=lambda k: (k[1] != GENSC and not k[1].startswith(GENSC),
                                                                       k[1], k[2] == ENVELOPE_MCS, k[2]))
    for _, label, mcs in keys:
        vals = series[(channel, label, mcs)]
        name = label + (f" {mcs}" if mcs else "")
        if label.startswith(GENSC):
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


class Report:
    """Collects the sections of ``docs/results.md``.

    :param results: the ``results/`` folder the scenarios wrote to.
    :param out: the Markdown file to write.
    """

    def __init__(self, results: str | Path = "results", out: str | Path = "docs/results.md",
                 anchors: str | Path | None = None):
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
            self.lines += ["No weights ship yet (`semsim train scenarios/train_small_gpu.yaml`, then "
                           "`semsim ship results/train/small-gpu`).", ""]
            return
        recipes = sorted({e.get("recipe", "") for e in shipped.values()})
        self.lines += [f"Every learned method's `small` preset, trained in turn by `semsim train` on identical data, "
                       f"steps, SNR range, seed and budget ({', '.join(f'`{r}`' for r in recipes)}), then "
                       f"`semsim ship`. Files, checksums and provenance: `semsim/pretrained/manifest.json`.", "",
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
        self.lines += ["", f"Training all six took {total:.0f} s ({total / 60:.1f} min) of training-loop time "
                           f"(validation included).", ""]
        self._img(self.results / "train" / "small-gpu" / "curves.png", "train_curves.png", "training curves")

    def ablation(self) -> None:
        """The training-recipe ablation at equal images seen (``benchmarks/ablation.py --json
        results/ablation.json``)."""
        path = self.results / "ablation.json"
        if not path.is_file():
            return
        rows = json.loads(path.read_text())
        r0 = rows[0]
        self.lines += ["## Training recipe: ablation at equal images seen", "",
                       f"`python benchmarks/ablation.py --json {path}`: each arm trains the `small` preset from "
                       f"scratch with seed 0 on the same random crops of BSDS500 train+val "
                       f"({int(round((r0['pixels'] / r0['images']) ** 0.5))} px, batch 8; GenSC also as many "
                       "CamVid train crops), AWGN, CBR 1/16, SNR 0–20 dB. In a ladder each arm adds one fix to the "
                       "arm above it; `lr` rows are the full new recipe at another peak lr (`--lr-sweep`); "
                       "`new recipe` rows (`--ends`) are every fix at the method's chosen lr. Scores after the "
                       "last step on the first BSDS500 test photos at full size (mean PSNR) and CamVid val pairs "
                       "(mIoU); arms of one length share seed, crops, SNR draws and validation noise.", "",
                       "| method | arm | what | crops | PSNR 1 dB | PSNR 7 dB | PSNR 13 dB | mIoU 7 dB |",
                       "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            miou = r.get("miou_7", math.nan)
            self.lines.append(f"| {r['method']} | {r['arm']} | {r.get('what', '')} | {r['images']:,d} | "
                              f"{_fmt(r.get('psnr_1', math.nan))} | {_fmt(r.get('psnr_7', math.nan))} | "
                              f"{_fmt(r.get('psnr_13', math.nan))} | {'' if math.isnan(miou) else f'{miou:.3f}'} |")
        self.lines.append("")

    def digital_receiver(self) -> None:
        """The digital receiver's options measured (``benchmarks/digital_receiver.py --markdown
        results/digital_receiver.md``), spliced in as written; without that file the section of
        the page being replaced is kept (it is measured by hand, not by a figure scenario)."""
        path = self.results / "digital_receiver.md"
        if path.is_file():
            self.lines += path.read_text().strip().splitlines() + [""]
        elif self.out.is_file():
            old = self.out.read_text().splitlines()
            start = next((i for i, line in enumerate(old) if line.startswith("## The digital receiver")), None)
            if start is not None:
                end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
                self.lines += old[start:end]

    def _validation(self, entry: dict[str, Any]) -> str:
        from .scenario import _safe_name

        shipped = (entry.get("validation") or {}).get("score")
        if shipped:
            snrs = "/".join(f"{v:g}" for v in entry["validation"].get("snr_db", []))
            return ", ".join(f"{v:.2f} dB" if t == "reconstruction" else f"mIoU {v:.3f}"
                             for t, v in shipped.items()) + f" (ship's set, mean over {snrs} dB)"
        folder = _recipe_output(entry.get("recipe", ""))
        if folder is None:
            return ""
        path = folder / _safe_name(entry.get("label", "")) / "validation.csv"
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
        channels = sorted({k[0] for k in series}, key=lambda c: ("awgn", "rayleigh", "tdl-a").index(c)
                          if c in ("awgn", "rayleigh", "tdl-a") else 9)
        prov = self._provenance(fig.folder)
        if fig.key == "cbr":
            self._cbr_table(rows)
        else:
            snrs = sorted({float(num(r["snr_db"])) for r in rows})
            for ch in channels:
                extra = None
                if fig.key == "fig5" and ch == "awgn":
                    extra = {k if "published" in k else f"{k} (published)": v
                             for k, v in _anchors(self.anchors).items()}
                per_point = max(Counter(r["point"] for r in rows if r["channel"] == ch).values())
                what = (f"mIoU over {per_point} images" if fig.metric == "miou"
                        else f"PSNR in dB, mean over {per_point} images")
                self.lines += [f"**{ch}** ({what})", ""]
                self.lines += _wide_table(series, ch, snrs, 3 if fig.metric == "miou" else 2, extra) + [""]
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
            r["label"] = method_label(r)
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
        for folder in sorted(self.results.glob("fig5*")):
            prov = self._provenance(folder.name)
            last = prov.get("last_run") or {}
            if last.get("points_run"):
                runs.append(f"| `{folder.name}` | {prov.get('device', '?')} | {last['points_run']} | "
                            f"{last['wall_seconds']:.1f} s |")
        if runs:
            self.lines += ["The fig5 sweep (`semsim run scenarios/fig5.yaml`; 3 channels × 5 SNRs × 24 photos × "
                           "6 method/MCS lines), wall time of one uninterrupted run:", "",
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
        """Where GenSC is ahead or behind, with numbers computed from the results."""
        self.lines += ["## Where GenSC is ahead, where it is behind, and why", ""]
        said = False
        for key, what in (("fig5", "Kodak full size"), ("fig4", "Kodak 224×224 crops")):
            series = self.facts.get(key)
            if not series:
                continue
            for ch in ("awgn", "rayleigh", "tdl-a"):
                gensc = [v for k, v in series.items() if k[0] == ch and k[1].startswith(GENSC)]
                if not gensc:
                    continue
                g = gensc[0]
                others = {(_short(k[1]) + (f" {k[2]}" if k[2] else "")): v for k, v in series.items()
                          if k[0] == ch and not k[1].startswith(GENSC) and k[2] in ("", ENVELOPE_MCS)
                          and "capacity" not in k[1]}
                parts = []
                for name, v in sorted(others.items()):
                    diffs = {s: g[s] - v[s] for s in sorted(g) if s in v and math.isfinite(v[s])}
                    if diffs:
                        parts.append(_versus(name, diffs, "dB", 1))
                self.lines.append(f"- **{what}, {ch}:** GenSC is " + "; ".join(parts) + ".")
                said = True
        series = {**self.facts.get("fig7", {}), **self.facts.get("fig7_fading", {})}
        if series:
            for ch in ("awgn", "rayleigh", "tdl-a"):
                g = next((v for k, v in series.items() if k[0] == ch and k[1].startswith(GENSC)), None)
                if g is None:
                    continue
                parts = []
                for k, v in sorted(series.items()):
                    if k[0] != ch or k[1].startswith(GENSC) or k[2] not in ("", ENVELOPE_MCS):
                        continue
                    diffs = {s: g[s] - v[s] for s in sorted(g) if s in v and math.isfinite(v[s])}
                    if diffs:
                        parts.append(_versus(f"{_short(k[1])}{' ' + k[2] if k[2] else ''}", diffs, "", 3))
                self.lines.append(f"- **CamVid mIoU, {ch}:** GenSC is " + "; ".join(parts) + ".")
                said = True
        if said:
            self.lines.append("")
        self.lines += [line for line in WHY.strip().splitlines()] + [""]

    # --- the page -------------------------------------------------------------------------------
    def write(self) -> Path:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.lines = ["# Results", "",
                      f"*Generated by `semsim report` on {now} from `{self.results}/`; do not edit by hand.* "
                      "Regenerate with the figure scenarios (`semsim run scenarios/fig4.yaml`, `fig5`, `fig7`, "
                      "`cbr_sweep`, `snr_mismatch`; `semsim grid scenarios/fig6.yaml`, `fig7_grid`, `voc_grid`) "
                      "and then `semsim report`.", "",
                      "Conventions: SNR = Es/N0 per complex channel symbol; CBR = complex channel uses / (3·H·W); "
                      "power normalised per image; PSNR in dB on 8-bit RGB; every method gets the same channel-use "
                      "budget. Labels say which channel the learned weights were trained on.", ""]
        self.weights()
        self.ablation()
        for fig in FIGURES[:2]:
            self.figure(fig)
        self.grids_subset(("fig6",))
        self.figure(FIGURES[2])
        self.figure(FIGURES[3])
        self.grids_subset(("fig7_grid", "voc_grid"))
        for fig in FIGURES[4:]:
            self.figure(fig)
        self.digital_receiver()
        self.timings()
        self.account()
        with atomic_file(self.out) as tmp:
            tmp.write_text("\n".join(self.lines).rstrip() + "\n")
        return self.out

    def grids_subset(self, keys: tuple[str, ...]) -> None:
        for key, scenario, folder, title in GRIDS:
            if key in keys:
                self.lines += [f"## {title}", ""]
                src = self.results / folder / "grid.png"
                if src.is_file():
                    self._img(src, f"{key}.png", title)
                    for other in sorted((self.results / folder).glob("grid_*.png")):  # other channels
                        channel = other.stem.removeprefix("grid_")
                        self.lines += [f"Over {channel} (`semsim grid {scenario} --channel {channel}`):", ""]
                        self._img(other, f"{key}_{channel}.png", f"{title}, {channel}")
                else:
                    self._missing(scenario, "grid")


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


#: The part of the account that explains the numbers (the numbers themselves are computed above).
WHY = """
Why, as far as these runs can tell:

- **Training is short.** Every learned model here is a `small` preset (2.9–3.7 M parameters) trained
  for 1,450 steps of batch 64 at 128 px (under two minutes each on one H200), against days on
  DIV2K/CLIC for the published curves. The learned codecs' PSNR is still nearly flat in SNR: they
  have learned a good average code but not yet to spend a clean channel on detail. The published
  curves (dashed) lie 6–12 dB above everything trained here; that gap is training budget, not the
  comparison, which is at equal parameters, data, steps and channel uses.
- **GenSC pays for doing two tasks with one encoder.** Its encoder, receiver KB and both decoders
  share one parameter budget and one set of optimiser steps between reconstruction and
  segmentation, while each baseline spends all of it on one task. At equal size and steps the
  dedicated reconstruction baselines (Deep JSCC above all, the simplest and fastest to train) reach
  a higher PSNR on AWGN.
- **GenSC's reconstruction is a one-step diffusion decode.** With `sampling_steps: 1` it returns the
  MMSE estimate, which blurs; the Fig. 6 grid also shows a faint 8×8 block pattern from the ×8
  pixel-shuffle head, typical this early in training. More DDIM steps raise MS-SSIM at about equal
  PSNR (`scenarios/gensc_sampling_steps.yaml`).
- **WITT shifts colours** at this training length (sepia reds in the Fig. 6 grid): its Swin
  decoder has learned luminance before chroma. Its PSNR is close to ADJSCC's.
- **Segmentation under a tight budget favours GenSC's features.** GenSC sends at most 2 symbols
  per 8×8 block (about 5,400 of the 10,000 channel uses on CamVid) of Swin features that are
  already semantic, and its mIoU barely moves with SNR. Deeplab-JSCC sends its whole budget of
  features learned in the same steps. JPEG+LDPC+FCN segments an exact JPEG above the link's
  threshold, so there it is the one to beat; below the threshold, or when no JPEG quality fits
  20 kbit at all (a busy street scene often does not), the FCN labels a grey image.
- **Digital separation wins where it works.** Above its threshold SNR on AWGN, JPEG+LDPC+16QAM
  delivers an exact JPEG and beats the short-trained JSCC codecs by several dB; below it, it
  delivers nothing (the cliff). On Rayleigh block fading the cliff moves with each block's fade.
  Over TDL-A an image spans many OFDM slots and one failed codeword spoils the JPEG; with the
  old per-slot model (every slot an independent draw) nearly every image failed at these SNRs,
  while every JSCC codec degraded gracefully. The default is now one channel per image that
  evolves over its slots (`fading: continuous`), so failures cluster in fades and more images
  arrive whole; `fading: per_slot` keeps the old model.
- **Train SNR ≠ test SNR** (CPU recipe, 800 steps of batch 8; Deep JSCC has no SNR input): the
  model trained at a fixed 10 dB is better than the one trained over 0–20 dB at every test SNR at
  this training length, most below its training SNR, and it does not gain from SNRs above it: a
  decoder that never sees the SNR is tuned to one noise level. GenSC, fed the SNR, rises slowly
  and steadily with it.
- **Fading channels were never seen in training.** All weights are trained on AWGN (the labels
  say so); the learned codecs still get the CSI planes at the receiver and lose 1–3 dB on Rayleigh
  and TDL-A against AWGN. ADJSCC, whose attention modules are fed the SNR only, suffers most on
  TDL-A.
"""


def report(results: str | Path = "results", out: str | Path = "docs/results.md",
           anchors: str | Path | None = None) -> Path:
    """Write ``out`` (and its figures beside it in ``figures/``); returns its path."""
    return Report(results, out, anchors).write()
