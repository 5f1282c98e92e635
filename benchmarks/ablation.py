"""The training-recipe ablation at equal compute: the old recipe of the first shipped weights, then
each fix added in turn, every arm trained from the same seed on the same number of images (not the
same wall time: a shared machine varies 10x from step to step), scored on BSDS500 test at
1 / 7 / 13 dB (mean PSNR of the reconstruction, and CamVid val mIoU for GenSC).

Each arm is an ordinary ``kind: train`` scenario (printed with ``--show``), trained by
``semsim.train`` into ``$SEMSIM_CACHE_DIR/ablation/<arm>`` and resumable: rerun the same command
after an interruption and finished arms are read back, a stopped one continues.

Usage::

    python benchmarks/ablation.py                           # Deep JSCC and GenSC, every arm
    python benchmarks/ablation.py --methods deepjscc --steps 300 --crop 64 --batch 8
    python benchmarks/ablation.py --lr-sweep                # the same tuning for every method
    python benchmarks/ablation.py --lr-sweep 2e-5 5e-5 1e-4 --init shipped --crop 128   # continuation lr
    python benchmarks/ablation.py --json ablation.json      # the table as data too
    python benchmarks/ablation.py --methods semantic --ends --steps 11600 --crop 128 --warmup 100 \
        --method-lr semantic=1e-3 --val-every 1450           # the shipped weights' 92,800 crops
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

#: the recipe of the first shipped weights (scenarios/train_small_gpu.yaml before issue 11)
OLD = {"optimizer": {"lr": 2.0e-4, "betas": [0.5, 0.999], "weight_decay": 0.01, "schedule": "constant",
                     "final_lr": 1.0},
       "symbols": {"at_budget": 0.5, "low": 0.25, "high": 1.0},
       "per_method": {"semantic": {"loss_weights": {"segmentation": 1.0}, "last_step_prob": 0.25}}}
#: the fixes, each added on top of the previous arms (name, what it changes, for which methods)
FIXES = [
    ("+optimizer", "AdamW lr LR, betas (0.9, 0.999), no weight decay, cosine to 0.1 lr",
     {"optimizer": {"lr": "LR", "betas": [0.9, 0.999], "weight_decay": 0.0, "schedule": "cosine",
                    "final_lr": 0.1}}, None),
    ("+symbols", "3/4 of batches at the budget, the rest CBR budget/3 .. 2 x budget",
     {"symbols": {"at_budget": 0.75, "low": 1 / 3, "high": 2.0}}, None),
    ("+loss balance", "GenSC: segmentation loss weight 0.1",
     {"per_method": {"semantic": {"loss_weights": {"segmentation": 0.1}}}}, {"semantic"}),
    ("+time steps", "GenSC: t = T-1 for 3/4 of the reconstruction batches",
     {"per_method": {"semantic": {"last_step_prob": 0.75}}}, {"semantic"}),
]


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _fill_lr(d, lr: float):
    if isinstance(d, dict):
        return {k: _fill_lr(v, lr) for k, v in d.items()}
    return lr if d == "LR" else d


#: what a method needs besides its name and preset (the FCN validates through one MCS, as the recipes)
METHOD_OPTIONS = {"jpeg+ldpc+fcn": {"mcs": "16qam-1/2"}}


def scenario(method: str, recipe: dict, args) -> dict:
    """One arm as a ``kind: train`` scenario."""
    per = recipe.get("per_method", {}).get(method)
    sc = {"kind": "train", "name": "ablation", "seed": 0, "device": "cpu",
          "methods": [{"name": method, "preset": "small", **METHOD_OPTIONS.get(method, {})}],
          "budget": {"cbr": "1/16"}, "channel": "awgn",
          "snr_db": {"low": 0, "high": 20}, "steps": args.steps, "batch_size": args.batch, "crop": args.crop,
          "data": {"reconstruction": [{"name": "bsds500", "split": "train"}, {"name": "bsds500", "split": "val"}],
                   "segmentation": {"name": "camvid", "split": "train"}},
          "validation": {"every": args.val_every or args.steps, "snr_db": [1, 7, 13],
                         "data": {"reconstruction": {"name": "bsds500", "split": "test", "limit": args.val_images},
                                  "segmentation": {"name": "camvid", "split": "val", "limit": args.val_images}}},
          "optimizer": dict(recipe["optimizer"], warmup_steps=args.warmup, clip_grad_norm=1.0),
          "symbols": recipe["symbols"], "precision": args.precision,
          "checkpoint_every": max(50, min(250, args.steps // 20)),
          "log_every": 10}
    if per:
        sc["per_method"] = {method: per}
    if args.init != "scratch":
        sc["init"] = args.init
    return sc


def arms(method: str, lr: float) -> list[tuple[str, str, dict]]:
    out, recipe = [("old recipe", "lr 2e-4, betas (0.5, 0.999), wd 0.01, constant; half at the budget", OLD)], OLD
    for name, what, change, only in FIXES:
        if only is not None and method not in only:
            continue
        recipe = _merge(recipe, _fill_lr(change, lr))
        out.append((name, what.replace("LR", f"{lr:g}"), recipe))
    return out


def run_arm(method: str, arm: str, recipe: dict, args) -> dict:
    from semsim.train import VALIDATION, train

    sc = scenario(method, recipe, args)
    slug = f"{method}-{arm.strip('+').replace(' ', '_')}-{args.steps}x{args.batch}x{args.crop}" + \
        ("" if args.init == "scratch" else f"-from_{args.init}")
    out = Path(args.cache) / slug
    train(sc, output=out, progress=not args.quiet, max_minutes=args.max_minutes)
    folder = next(p for p in out.iterdir() if p.is_dir())
    rows = list(csv.DictReader(open(folder / VALIDATION)))
    last = max(int(r["step"]) for r in rows)
    res = {"method": method, "arm": arm, "init": args.init, "steps": last, "images": last * args.batch,
           "pixels": last * args.batch * args.crop ** 2, "done": last == args.steps}
    for r in rows:
        if int(r["step"]) in (0, last):  # step 0: the weights it started from (a continuation)
            pre = "" if int(r["step"]) == last else "start_"
            res[f"{pre}psnr_{float(r['snr_db']):g}"] = float(r["psnr"])
            res[f"{pre}miou_{float(r['snr_db']):g}"] = float(r["miou"])
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="*", default=["deepjscc", "semantic"])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3, help="the new recipe's peak learning rate")
    p.add_argument("--method-lr", nargs="*", default=[], metavar="METHOD=LR",
                   help="a method's own peak lr (from its --lr-sweep), e.g. deepjscc=2e-4")
    p.add_argument("--ends", action="store_true", help="only the old recipe and the full new one")
    p.add_argument("--lr-sweep", nargs="*", type=float, default=None, metavar="LR",
                   help="instead of the ablation: the full new recipe at each of these peak lrs")
    p.add_argument("--init", choices=("scratch", "shipped"), default="scratch",
                   help="shipped: every arm continues the shipped weights (a fresh optimiser), as the "
                        "continuation recipes do; with --lr-sweep, how their peak lr is chosen")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--val-images", type=int, default=8)
    p.add_argument("--val-every", type=int, default=None,
                   help="validate every N steps too (default: only at the end), for the validation curve")
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--cache", default=os.path.join(os.environ.get("SEMSIM_CACHE_DIR")
                                                   or os.path.expanduser("~/.cache/semsim"), "ablation"))
    p.add_argument("--json", default=None)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    results = []
    own_lr = {k: float(v) for k, v in (item.split("=", 1) for item in args.method_lr)}
    for method in args.methods:
        plan = arms(method, own_lr.get(method, args.lr))
        if args.ends:
            lr = plan[-1][2]["optimizer"]["lr"]
            plan = [plan[0], ("new recipe", f"every fix ({', '.join(a for a, _, _ in plan[1:])}), lr {lr:g}",
                              plan[-1][2])]
        if args.lr_sweep is not None:
            full = plan[-1][2]
            plan = [(f"lr {lr:g}", "the full new recipe", _merge(full, {"optimizer": {"lr": lr}}))
                    for lr in (args.lr_sweep or [3e-4, 1e-3, 3e-3])]
        for arm, what, recipe in plan:
            res = run_arm(method, arm, recipe, args)
            res["what"] = what
            results.append(res)
            print(json.dumps(res), file=sys.stderr, flush=True)
    from semsim.report import ablation_table

    print("\n" + "\n".join(ablation_table(results)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
