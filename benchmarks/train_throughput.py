"""Training throughput of every learned method's preset: images per second through one optimiser
step (forward through the channel, backward, AdamW), on random crops.

Each method trains each of its tasks per step (the paper's system does one reconstruction and one
segmentation batch), so img/s counts every image that went through the network. The table gives
the median over ``--repeats`` timed steps after ``--warmup`` untimed ones, with parameters and
the bf16 weight size.

A *setting* is ``+``-joined words: ``fp32`` or ``bf16`` (autocast, on the CPU as on CUDA),
``compile`` (``torch.compile`` of each top-level module of the codec), ``tN`` (N torch threads),
``cl`` (channels_last memory format). With several ``--settings`` the table has an img/s column per
setting, measured interleaved (setting 1, 2, … then again) so that a machine whose load drifts
favours none of them; the fastest is starred.

Usage::

    python benchmarks/train_throughput.py                         # small presets, CPU, 128 px, batch 8
    python benchmarks/train_throughput.py --settings fp32 bf16 fp32+compile fp32+t1
    python benchmarks/train_throughput.py --device cuda --crop 256 --batch 32 --precision bf16
    python benchmarks/train_throughput.py --methods semantic witt --json out.json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _setting(text: str) -> dict:
    out = {"precision": "fp32", "compile": False, "threads": None, "channels_last": False}
    for word in text.split("+"):
        if word in ("fp32", "bf16"):
            out["precision"] = word
        elif word == "compile":
            out["compile"] = True
        elif word == "cl":
            out["channels_last"] = True
        elif word.startswith("t") and word[1:].isdigit():
            out["threads"] = int(word[1:])
        else:
            raise SystemExit(f"unknown setting word {word!r} in {text!r}: use fp32, bf16, compile, cl, tN")
    return out


class Bench:
    """One method under one setting: a codec, its optimiser and a fixed batch; :meth:`step` times
    one optimiser step (forward through the channel, backward, AdamW)."""

    def __init__(self, method: str, preset: str, device: str, crop: int, batch: int, setting: str):
        from semsim import registry
        from semsim.channels import build_channel
        from semsim.codec import Budget
        from semsim.config import seed_everything

        self.cfg, self.device, self.batch = _setting(setting), device, batch
        seed_everything(0)
        spec = {"name": method, "preset": preset}
        if method == "jpeg+ldpc+fcn":
            spec["mcs"] = "16qam-1/2"
        codec = registry.build("codec", spec, budget=Budget("cbr", 1 / 16)).to(device).train()
        self.params = sum(p.numel() for p in codec.parameters())
        if self.cfg["channels_last"]:
            codec = codec.to(memory_format=torch.channels_last)
        if self.cfg["compile"]:
            for name, module in list(codec.named_children()):
                setattr(codec, name, torch.compile(module, dynamic=False))
        self.codec, self.channel = codec, build_channel("awgn")
        self.opt = torch.optim.AdamW(codec.parameters(), lr=1e-4, betas=(0.5, 0.999), weight_decay=0.01)
        self.images = torch.rand(batch, 3, crop, crop, device=device)
        self.labels = torch.randint(0, getattr(codec, "num_classes", None) or 11, (batch, crop, crop), device=device)

    def step(self) -> float:
        from semsim.codec import Task

        if self.cfg["threads"]:
            torch.set_num_threads(self.cfg["threads"])
        autocast = (torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16)
                    if self.cfg["precision"] == "bf16" else contextlib.nullcontext())
        _sync(self.device)
        t0 = time.perf_counter()
        loss = 0
        with autocast:
            for task in self.codec.tasks:
                snr = torch.rand(self.batch, device=self.device) * 20
                part, _ = self.codec.training_step(task, self.images,
                                                   self.labels if task is Task.SEGMENTATION else None,
                                                   self.channel, snr)
                loss = loss + part
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        _sync(self.device)
        return time.perf_counter() - t0


def measure(method: str, preset: str, device: str, crop: int, batch: int, warmup: int, repeats: int,
            precision: str = "fp32", settings: list[str] | None = None) -> dict:
    """img/s of one optimiser step of ``method`` under each setting (median of ``repeats`` timed
    steps after ``warmup`` untimed ones, the settings interleaved)."""
    from semsim.info import bf16_mib

    settings = settings or [precision]
    threads = torch.get_num_threads()
    benches = {s: Bench(method, preset, device, crop, batch, s) for s in settings}
    times: dict[str, list[float]] = {s: [] for s in settings}
    for i in range(warmup + repeats):
        for s, b in benches.items():
            t = b.step()
            if i >= warmup:
                times[s].append(t)
        torch.set_num_threads(threads)
    first = next(iter(benches.values()))
    tasks = len(first.codec.tasks)
    steps = {s: statistics.median(t) for s, t in times.items()}
    return {"method": method, "preset": preset, "device": device, "crop": crop, "batch": batch,
            "precision": settings[0], "tasks": tasks, "parameters": first.params,
            "bf16_mib": round(bf16_mib(first.codec), 2), "s_per_step": round(steps[settings[0]], 4),
            "img_per_s": round(batch * tasks / steps[settings[0]], 2),
            "settings": {s: round(batch * tasks / steps[s], 2) for s in settings}}


def main() -> None:
    from semsim.info import learned_methods

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="*", default=None, help="default: every learned method")
    p.add_argument("--preset", default="small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast")
    p.add_argument("--settings", nargs="*", default=None, metavar="SETTING",
                   help="settings to compare, e.g. fp32 bf16 fp32+compile fp32+t1 (default: --precision alone)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    from semsim.config import set_device

    device = set_device(args.device)
    settings = args.settings or [args.precision]
    rows = [measure(m, args.preset, device, args.crop, args.batch, args.warmup, args.repeats, args.precision,
                    settings)
            for m in (args.methods or list(learned_methods()))]
    cols = " | ".join(f"img/s {s}" for s in settings)
    print(f"| method | preset | parameters | bf16 MiB | tasks/step | {cols} |  ({device}, {args.crop} px, "
          f"batch {args.batch}, {torch.get_num_threads()} threads by default)")
    print("|---|---|---|---|---|" + "---|" * len(settings))
    for r in rows:
        best = max(r["settings"].values())
        vals = " | ".join(f"{v}{' *' if v == best and len(settings) > 1 else ''}" for v in r["settings"].values())
        print(f"| {r['method']} | {r['preset']} | {r['parameters']:,d} | {r['bf16_mib']} | {r['tasks']} | {vals} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
