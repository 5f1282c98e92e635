"""The digital receiver's options measured (issue 14 section 4), as markdown tables.

Four parts:

- ``kodak``: ``scenarios/digital_receiver.yaml`` (Kodak, CBR 1/16, JPEG + LDPC 16QAM-1/2 over AWGN,
  Rayleigh and TDL-A at 7–18 dB) with the plain receiver, with restart markers every MCU row that
  Pillow resynchronises on by itself (``conceal: false``), and with restart markers plus the
  concealing receiver: mean PSNR, images shown grey, images with a failed codeword, failed
  codewords (parity failures: a codeword whose parity bits alone are wrong counts too). Paired:
  every variant is sent with the same seed per (channel, SNR, image), so the columns differ by the
  receiver, not by the channel draw (a runner sweep seeds each method apart);
- ``fig7``: ``scenarios/fig7.yaml`` for JPEG+LDPC+FCN 16QAM-1/2 over AWGN with ``scaling`` ``off``
  (the former receiver), ``fallback`` (the default) and ``best``: mIoU and how many images were sent;
- ``scaling``: error-free PSNR of ``scaling: fallback`` and ``best`` on Kodak at CBR 1/16 for three
  MCS (source coding only, seconds);
- ``bler``: 16QAM-1/2 LDPC BLER over TDL-A with ``fading: per_slot`` and ``continuous``
  (``kind: ber``, 16 codewords per frame).

``fig7`` and ``bler`` are ordinary scenarios run by :func:`semsim.runner.run` under ``--out``;
``kodak`` keeps its rows in ``--out``/kodak/rows.json. A rerun reads finished points back.

Usage::

    python benchmarks/digital_receiver.py                                   # everything (hours on 2 cores)
    python benchmarks/digital_receiver.py --parts kodak --images 6 --device cpu
    python benchmarks/digital_receiver.py --markdown results/digital_receiver.md   # for semsim report
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the Kodak variants: name, method options, what they mean
KODAK_VARIANTS = [
    ("plain", {"restart_rows": 0}, "no restart markers (the former stream)"),
    ("RST", {"restart_rows": 1, "conceal": False}, "a restart marker every MCU row, Pillow decodes as received"),
    ("RST+conceal", {"restart_rows": 1}, "restart markers; intervals of failed codewords dropped and concealed"),
]
#: the fig7 variants of ``scaling``
SCALING_VARIANTS = ["off", "fallback", "best"]


def _yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def _run(raw: dict, out: Path, device: str | None) -> list[dict[str, str]]:
    from semsim.runner import run
    from semsim.scenario import load_scenario

    raw = {**raw, "output": str(out)}
    csv_path = run(load_scenario(raw), output=out, device=device, progress=False)
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def _num(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.nan


def kodak_rows(args) -> list[dict]:
    """Every (channel, SNR, image) of ``scenarios/digital_receiver.yaml`` sent with each variant
    under the same seed (paired: RST and RST+conceal send the same stream through the same channel
    draw; plain's stream is 2 bytes per interval shorter)."""
    from semsim.config import derive_seed, set_device
    from semsim.data import build_dataset
    from semsim.registry import build
    from semsim.scenario import load_scenario, spec_key

    raw = _yaml(REPO / "scenarios" / "digital_receiver.yaml")
    if args.images:
        raw["data"] = {**raw["data"], "limit": args.images}
    if args.kodak_snr:
        raw["snr_db"] = args.kodak_snr
    sc = load_scenario(raw)
    set_device(args.device or sc.device)
    samples = list(build_dataset(sc.data[0]))
    method = sc.methods[0]
    codecs = {name: build("codec", {**method, **options}, budget=sc.budgets[0]).with_axes(mcs=method["mcs"][0])
              for name, options, _ in KODAK_VARIANTS}
    cache = args.out / "kodak" / "rows.json"
    done = json.loads(cache.read_text()) if cache.is_file() else {}
    rows = []
    for ch_spec in sc.channels:
        channel = build("channel", ch_spec)
        for snr in sc.snr_db:
            for sample in samples:
                key = f"{spec_key(ch_spec)}|{snr:g}|{sample.id}"
                if key not in done:  # a rerun reads finished (channel, SNR, image) cells back
                    done[key] = _kodak_cell(codecs, channel, snr, sample,
                                            derive_seed(sc.seed, spec_key(ch_spec), snr, sample.id))
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    cache.write_text(json.dumps(done))
                rows += [{"channel": spec_key(ch_spec), "snr_db": snr, "image": sample.id, **r} for r in done[key]]
    return rows


def _kodak_cell(codecs: dict, channel, snr: float, sample, seed: int) -> list[dict]:
    import torch

    from semsim.config import seed_everything
    from semsim.metrics import psnr

    out = []
    image = sample.image.unsqueeze(0)
    for name, codec in codecs.items():
        seed_everything(seed)
        with torch.no_grad():
            tr = codec.transmit(image, channel, snr)
        out.append({"variant": name, "psnr": float(psnr(image, tr.output)[0]), "failed": tr.failed[0],
                    **{k: v[0] for k, v in tr.extra.items()}})
    return out


def kodak(args) -> list[str]:
    rows = kodak_rows(args)
    n_img = len({r["image"] for r in rows})
    lines = [f"Kodak ({n_img} images{' (the first ' + str(args.images) + ')' if args.images else ''}), CBR 1/16, "
             "JPEG + LDPC 16QAM-1/2 (n = 1944), `scenarios/digital_receiver.yaml`; every variant sees the same "
             "seeded channel draw per image. Variants: " + "; ".join(f"**{n}** {what}" for n, _, what in KODAK_VARIANTS)
             + ". Per cell: mean PSNR (dB) / images shown grey / images with a failed codeword / "
               "failed codewords of all images.", ""]
    snrs = sorted({r["snr_db"] for r in rows})
    lines += ["| channel | receiver | " + " | ".join(f"{s:g} dB" for s in snrs) + " |",
              "|---|---|" + "---|" * len(snrs)]
    for channel in dict.fromkeys(r["channel"] for r in rows):
        for name, _, _ in KODAK_VARIANTS:
            cells = []
            for s in snrs:
                sel = [r for r in rows if r["channel"] == channel and r["snr_db"] == s and r["variant"] == name]
                cw = [r["codewords_failed"] for r in sel if not math.isnan(r["codewords_failed"])]
                cells.append(f"{sum(r['psnr'] for r in sel) / len(sel):.2f} / {sum(r['failed'] for r in sel)} / "
                             f"{sum(c > 0 for c in cw)} / {sum(cw)}")
            lines.append(f"| {channel} | {name} | " + " | ".join(cells) + " |")
    q = {name: [r["quality"] for r in rows if r["variant"] == name] for name, _, _ in KODAK_VARIANTS}
    lines += ["", "Mean JPEG quality: " + ", ".join(f"{n} {sum(v) / len(v):.1f}" for n, v in q.items()) + ".", ""]
    return lines


def fig7(args) -> list[str]:
    base = _yaml(REPO / "scenarios" / "fig7.yaml")
    if args.fig7_images:
        base["data"] = {**base["data"], "limit": args.fig7_images}
    if args.fig7_snr:
        base["snr_db"] = args.fig7_snr
    base["channels"] = ["awgn"]
    fcn = next(m for m in base["methods"] if m["name"] == "jpeg+ldpc+fcn")
    results = {}
    for scaling in SCALING_VARIANTS:
        raw = copy.deepcopy(base)
        raw["methods"] = [{**fcn, "mcs": ["16qam-1/2"], "scaling": scaling}]
        raw["name"] = f"fig7-scaling-{scaling}"
        results[scaling] = _run(raw, args.out / "fig7" / scaling, args.device)
    snrs = sorted({_num(r["snr_db"]) for r in results["off"]})
    n_img = len({r["image"] for r in results["off"]})
    lines = [f"CamVid test ({n_img} images{' (the first ' + str(args.fig7_images) + ')' if args.fig7_images else ''}"
             f"), 10,000 channel uses (20 kbit at 16QAM-1/2), JPEG+LDPC+FCN (`jpeg+ldpc+fcn-small`) over AWGN, "
             "`scenarios/fig7.yaml` with `scaling` set. Per cell: mIoU / images sent (the rest are grey).", "",
             "| scaling | " + " | ".join(f"{s:g} dB" for s in snrs) + " |", "|---|" + "---|" * len(snrs)]
    for scaling, rows in results.items():
        cells = []
        for s in snrs:
            sel = [r for r in rows if _num(r["snr_db"]) == s]
            sent = sum(not math.isnan(_num(r["quality"])) for r in sel)
            cells.append(f"{_num(sel[0]['miou']):.3f} / {sent}")
        lines.append(f"| {scaling} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def scaling(args) -> list[str]:
    """Error-free PSNR of ``scaling: fallback`` and ``best`` on Kodak at CBR 1/16 (source coding only)."""
    from collections import Counter

    from semsim.baselines.source_coding import fit_scaled, to_uint8, upscale
    from semsim.codec import Budget
    from semsim.data import build_dataset
    from semsim.registry import build

    samples = list(build_dataset({"name": "kodak", **({"limit": args.images} if args.images else {})}))
    lines = [f"The first {len(samples)} Kodak images at CBR 1/16, decoded without channel errors (source coding "
             "only, `fit_scaled`), mean PSNR in dB:", "",
             "| MCS | fallback | best | scales `best` picks |", "|---|---|---|---|"]
    for mcs in ("qpsk-1/3", "16qam-1/2", "64qam-2/3"):
        codec = build("codec", {"name": "jpeg+ldpc", "mcs": [mcs]}, budget=Budget("cbr", 1 / 16)).with_axes(mcs=mcs)
        scores, picked = {"fallback": [], "best": []}, Counter()
        for sample in samples:
            image = to_uint8(sample.image)
            size = image.shape[:2]
            for mode, values in scores.items():
                fitted = fit_scaled(codec.coder, image, codec.max_info_bits(*size), mode)
                decoded = upscale(codec.coder.decode(fitted.data, fitted.size), size).astype(float)
                values.append(10 * math.log10(255 ** 2 / ((decoded - image) ** 2).mean()))
                picked[fitted.scale] += mode == "best"
        mean = {m: sum(v) / len(v) for m, v in scores.items()}
        lines.append(f"| {mcs} | {mean['fallback']:.2f} | {mean['best']:.2f} | "
                     + ", ".join(f"{s:g}: {n}" for s, n in sorted(picked.items(), reverse=True) if n) + " |")
    return lines + [""]


def bler(args) -> list[str]:
    results = {}
    for fading in ("per_slot", "continuous"):
        raw = {"name": f"bler-tdl-a-{fading}", "kind": "ber", "seed": 0,
               "channels": [{"name": "tdl-a", "fading": fading}], "snr_db": args.bler_snr,
               "modulations": ["16qam"], "code_rates": ["1/2"], "min_errors": args.bler_min_errors,
               "max_bits": args.bler_max_bits}
        results[fading] = _run(raw, args.out / "bler" / fading, args.device)
    lines = ["16QAM-1/2 LDPC (n = 1944) over TDL-A (100 ns, 3 m/s, 3.5 GHz, 20 MHz NR grid, perfect CSI: the "
             "defaults), `kind: ber`, 16 codewords per frame. Per cell: BLER (block errors / blocks).", "",
             "| fading | " + " | ".join(f"{s:g} dB" for s in args.bler_snr) + " |",
             "|---|" + "---|" * len(args.bler_snr)]
    for fading, rows in results.items():
        cells = [f"{_num(r['bler']):.3g} ({r['block_errors']}/{r['blocks']})" for r in rows]
        lines.append(f"| {fading} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


PARTS = {"kodak": (kodak, "JPEG restart markers and concealment"),
         "fig7": (fig7, "Resolution in rate control (fig7)"),
         "scaling": (scaling, "Resolution in rate control, error-free (Kodak)"),
         "bler": (bler, "BLER with per-slot and continuous fading")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="kodak,fig7,scaling,bler", help="comma-separated: kodak, fig7, scaling, bler")
    p.add_argument("--images", type=int, default=0, help="Kodak images (first N; 0: all 24)")
    p.add_argument("--kodak-snr", type=float, nargs="+", help="Kodak SNRs in dB (default: the scenario's)")
    p.add_argument("--fig7-images", type=int, default=0, help="CamVid test images (first N; 0: all)")
    p.add_argument("--fig7-snr", type=float, nargs="+", help="fig7 SNRs in dB (default: the scenario's)")
    p.add_argument("--bler-snr", type=float, nargs="+", default=[10.0, 14.0, 18.0])
    p.add_argument("--bler-min-errors", type=int, default=20000, help="bit errors per BLER point")
    p.add_argument("--bler-max-bits", type=int, default=2_000_000, help="information bits per BLER point")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: the scenario's)")
    p.add_argument("--out", type=Path, default=REPO / "results" / "digital_receiver")
    p.add_argument("--markdown", type=Path, help="also write the section to this file (semsim report reads "
                                                "results/digital_receiver.md)")
    args = p.parse_args(argv)
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        p.error(f"unknown parts {unknown}; valid: {sorted(PARTS)}")
    lines = ["## The digital receiver: restart markers, concealment, resolution in rate control", "",
             "`python benchmarks/digital_receiver.py`; the options are described in `docs/baselines.md`.", ""]
    for part in parts:
        fn, title = PARTS[part]
        section = [f"### {title}", ""] + fn(args)
        print("\n".join(section), flush=True)
        lines += section
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines).rstrip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
