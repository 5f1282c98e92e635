"""Checkpoints of ``semsim train``: the fp32 weights and the full optimiser state, written together,
and the checks that make a resumed run continue the same trajectory; and the provenance that the
final weights carry (:func:`weights_metadata`).

A checkpoint is two files in a method's folder, each written atomically and renamed into place one
right after the other; the step stored in both must agree when resuming (a run killed between the
two renames is caught). A checkpoint (or final weights) made with other settings
(:meth:`semsim.train.Trainer.settings`) is refused, naming each setting that changed.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from . import registry
from .errors import ConfigError
from .provenance import known_commit
from .scenario import Scenario, spec_key
from .weights import load_optimizer, load_weights, read_meta, save_optimizer, save_weights

CHECKPOINT, OPTIMIZER = "checkpoint.safetensors", "optimizer.safetensors"


def jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparing with stored settings."""
    return json.loads(json.dumps(value))


def settings_diff(saved: dict[str, Any] | None, current: dict[str, Any]) -> str:
    """``"key: was …, now …"`` for each setting that differs, ``;``-separated (``"unknown"`` if none)."""
    saved, current = saved or {}, jsonable(current)
    keys = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    return "; ".join(f"{k}: was {saved.get(k)!r}, now {current.get(k)!r}" for k in keys) or "unknown"


def is_finished(final: Path, steps: int, settings: dict[str, Any]) -> bool:
    """Whether ``final`` holds weights trained for ``steps`` steps with these settings (a rerun then
    skips the method); :class:`ConfigError` if they were trained with other settings."""
    if not final.is_file():
        return False
    meta = read_meta(final)
    if meta.get("step") != steps:
        return False
    if meta.get("settings") != jsonable(settings):
        raise ConfigError(f"{final} was trained with other settings "
                          f"({settings_diff(meta.get('settings'), settings)}); rerun with --fresh to retrain")
    return True


def write_checkpoint(codec: torch.nn.Module, optimizer: torch.optim.Optimizer, folder: Path,
                     meta: dict[str, Any]) -> None:
    """Write ``folder/checkpoint.safetensors`` (fp32 weights, ``meta``) and ``optimizer.safetensors``
    (the optimiser state at ``meta["step"]``), each to a temporary file first, then renamed in turn."""
    tmp_w, tmp_o = folder / f".{CHECKPOINT}.new", folder / f".{OPTIMIZER}.new"
    save_weights(codec, tmp_w, meta, dtype=torch.float32)
    save_optimizer(optimizer, tmp_o, {"step": meta["step"]})
    os.replace(tmp_o, folder / OPTIMIZER)  # the two renames follow each other at once; a mismatch is caught on resume
    os.replace(tmp_w, folder / CHECKPOINT)


def resume(codec: torch.nn.Module, optimizer: torch.optim.Optimizer, folder: Path, settings: dict[str, Any],
           steps: int, say: bool = True) -> tuple[int, float]:
    """Load the checkpoint of ``folder`` into ``codec`` and ``optimizer`` if there is one.

    :param settings: the run's settings; the checkpoint's must be equal.
    :param steps: the run's number of steps; a checkpoint beyond it is refused.
    :param say: print a line to stderr when the checkpoint was written by another commit.
    :returns: the checkpoint's step and wall seconds, ``(0, 0.0)`` without a checkpoint.
    :raises ConfigError: other settings, weights and optimiser state of different steps, or a
        step beyond ``steps``.
    """
    ckpt, optp = folder / CHECKPOINT, folder / OPTIMIZER
    if not ckpt.is_file():
        return 0, 0.0
    meta = load_weights(codec, ckpt)
    if meta.get("settings") != jsonable(settings):
        raise ConfigError(f"checkpoint {ckpt} was made with other settings "
                          f"({settings_diff(meta.get('settings'), settings)}); rerun with --fresh to start over")
    opt_meta = load_optimizer(optimizer, optp)
    start, wall0 = int(meta["step"]), float(meta.get("wall_seconds", 0.0))
    commit = known_commit()
    if meta.get("git_commit", commit) != commit and say:
        print(f"semsim train: {folder.name}: resuming step {start} of a checkpoint written by commit "
              f"{meta.get('git_commit') or 'unknown'}; the code is now {commit or 'unknown'}", file=sys.stderr)
    if opt_meta.get("step") != start:
        raise ConfigError(f"{ckpt} (step {start}) and {optp} (step {opt_meta.get('step')}) do not match: "
                          f"the previous run was killed while writing them; rerun with --fresh")
    if start > steps:
        raise ConfigError(f"checkpoint {ckpt} is at step {start}, beyond steps={steps}; "
                          f"ask for more steps or rerun with --fresh")
    return start, wall0


def weights_metadata(sc: Scenario, m: int, steps: int, settings: dict[str, Any], before: dict[str, Any] | None,
                     recipe: str, device: str, device_name: str, world_size: int,
                     wall_seconds: float) -> dict[str, Any]:
    """The provenance of method ``m``'s final weights (``save_weights`` adds config and label):
    the recipe and data, this round and every earlier one (``before``: :func:`semsim.weights.cumulative`
    of the ``init`` weights), the device and the time. ``git_commit`` and ``semsim_version`` are the caller's."""
    st, spec = sc.train, sc.methods[m]
    cls, _ = registry.lookup("codec", spec["name"])
    channel = spec_key(sc.channels[0]) if getattr(cls, "channel_in_training", True) else ""
    this_round = {"recipe": recipe, "scenario": sc.name, "steps": steps, "batch_size": sc.batch_size, "crop": st.crop,
                  "precision": st.precision, "device_name": device_name, "world_size": world_size,
                  "wall_seconds": wall_seconds, "init": settings["init"], "images": steps * sc.batch_size,
                  "pixels": steps * sc.batch_size * st.crop ** 2}
    rounds = (before or {}).get("rounds", []) + [this_round]
    return {"method": spec["name"], "spec": spec, "train_channel": channel,
            "cumulative": {"steps": sum(r["steps"] for r in rounds), "images": sum(r["images"] for r in rounds),
                           "pixels": sum(r["pixels"] for r in rounds),
                           "wall_seconds": sum(r["wall_seconds"] for r in rounds), "rounds": rounds},
            "train_snr_db": list(st.snr_db), "budget": sc.budgets[0].key, "steps": steps,
            "step": steps, "batch_size": sc.batch_size, "crop": st.crop, "seed": sc.seed,
            "data": {t: [spec_key(s) for s in specs] for t, specs in st.data.items()},
            "validation_data": {t: spec_key(v) for t, v in st.validation_data.items()},
            "optimizer": settings["optimizer"], "loss_weights": settings["loss_weights"],
            "symbols": st.symbols, "options": settings["options"],
            "precision": st.precision, "device": device, "device_name": device_name,
            "world_size": world_size, "recipe": recipe, "wall_seconds": wall_seconds,
            "scenario": sc.name, "settings": settings}
