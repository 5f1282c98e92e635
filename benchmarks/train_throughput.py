"""Training throughput of every learned method's preset: images per second through one optimiser
step (forward through the channel, backward, AdamW), on random crops.

Each method trains each of its tasks per step (the paper's system does one reconstruction and one
segmentation batch), so img/s counts every image that went through the network. The table gives
the median over ``--repeats`` timed steps after ``--warmup`` untimed ones, with parameters and
the bf16 weight size.

Usage::

    python benchmarks/train_throughput.py                         # small presets, CPU, 128 px, batch 8
    python benchmarks/train_throughput.py --device cuda --crop 256 --batch 32
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


def measure(method: str, preset: str, device: str, crop: int, batch: int, warmup: int, repeats: int,
            precision: str = "fp32") -> dict:
    from semsim import registry
    from semsim.channels import build_channel
    from semsim.codec import Budget, Task
    from semsim.config import seed_everything
    from semsim.info import bf16_mib

    seed_everything(0)
    spec = {"name": method, "preset": preset}
    if method == "jpeg+ldpc+fcn":
        spec["mcs"] = "16qam-1/2"
    codec = registry.build("codec", spec, budget=Budget("cbr", 1 / 16)).to(device).train()
    channel = build_channel("awgn")
    opt = torch.optim.AdamW(codec.parameters(), lr=1e-4, betas=(0.5, 0.999), weight_decay=0.01)
    images = torch.rand(batch, 3, crop, crop, device=device)
    labels = torch.randint(0, getattr(codec, "num_classes", None) or 11, (batch, crop, crop), device=device)
    autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    times = []
    for i in range(warmup + repeats):
        _sync(device)
        t0 = time.perf_counter()
        loss = 0
        with autocast:
            for task in codec.tasks:
                snr = torch.rand(batch, device=device) * 20
                part, _ = codec.training_step(task, images, labels if task is Task.SEGMENTATION else None,
                                              channel, snr)
                loss = loss + part
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    return {"method": method, "preset": preset, "device": device, "crop": crop, "batch": batch,
            "precision": precision, "tasks": len(codec.tasks), "parameters": sum(p.numel() for p in codec.parameters()),
            "bf16_mib": round(bf16_mib(codec), 2), "s_per_step": round(step, 4),
            "img_per_s": round(batch * len(codec.tasks) / step, 2)}


def main() -> None:
    from semsim.info import learned_methods

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="*", default=None, help="default: every learned method")
    p.add_argument("--preset", default="small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast, CUDA only")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    from semsim.config import set_device

    device = set_device(args.device)
    rows = [measure(m, args.preset, device, args.crop, args.batch, args.warmup, args.repeats, args.precision)
            for m in (args.methods or list(learned_methods()))]
    print(f"| method | preset | parameters | bf16 MiB | tasks/step | s/step | img/s ({device}, {args.precision}, "
          f"{args.crop} px, batch {args.batch}) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['preset']} | {r['parameters']:,d} | {r['bf16_mib']} | {r['tasks']} | "
              f"{r['s_per_step']} | {r['img_per_s']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
