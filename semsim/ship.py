"""Shipping weights: the release step that copies final weights of a ``semsim train`` round into
the shipped-weights folder and records them in ``manifest.json`` (``semsim ship``), after scoring
each candidate against the weights it would replace on a fixed validation set.

Loading, saving and resolving weights (shipped ones included) is :mod:`semsim.weights`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .files import atomic_file, sha256
from .weights import PRETRAINED_DIR, cumulative, manifest, read_meta

#: the manifest's training channel of weights trained without the channel (an FCN on clean images)
NO_TRAIN_CHANNEL = "none (trained on clean images)"
#: What a manifest entry copies from the weights' metadata (written by ``semsim train``).
SHIPPED_FIELDS = ("method", "recipe", "scenario", "data", "steps", "batch_size", "crop", "train_channel",
                  "train_snr_db", "budget", "precision", "device", "device_name", "wall_seconds", "git_commit",
                  "optimizer", "loss_weights", "symbols", "options")
#: The fixed validation set on which ``semsim ship`` compares candidates with the shipped weights:
#: BSDS500 test (never training data; Kodak stays evaluation-only) and CamVid val, over AWGN at
#: the SNRs the issue tables report; the score of a task is its mean over these SNRs.
SHIP_VALIDATION = {"reconstruction": {"name": "bsds500", "split": "test", "limit": 12},
                   "segmentation": {"name": "camvid", "split": "val", "limit": 12},
                   "channel": "awgn", "snr_db": [1.0, 7.0, 13.0], "seed": 0, "batch_size": 4}


def _budget_of(meta: Mapping[str, Any]):
    from .codec import Budget, parse_ratio

    kind, _, value = str(meta.get("budget", "cbr=1/16")).partition("=")
    return Budget(kind, parse_ratio(value, "budget") if kind == "cbr" else float(value))


def score_weights(path: str | os.PathLike, validation: Mapping[str, Any] | None = None,
                  device: str = "cpu") -> dict[str, float]:
    """Score a weights file on :data:`SHIP_VALIDATION` (or ``validation``): task → mean PSNR (dB,
    reconstruction) or mIoU (segmentation) over the validation SNRs, through ``codec.transmit``.

    The codec is built from the file's own metadata (method, preset, options, budget).
    """
    from . import registry
    from .codec import Task
    from .data import batches_by_size, stack
    from .evaluate import scores_per_snr
    from .metrics import LabelSpace

    v = dict(SHIP_VALIDATION, **(validation or {}))
    meta = read_meta(path)
    spec = {k: val for k, val in (meta.get("spec") or {"name": meta.get("method")}).items() if k != "weights"}
    codec = registry.build("codec", {**spec, "weights": os.fspath(path)}, budget=_budget_of(meta)).to(device)
    channel = registry.build("channel", v["channel"])
    datasets = {task: registry.build("dataset", v[task.value]) for task in codec.tasks}
    batches = {task: [stack(b)[:2] for b in batches_by_size(ds, v["batch_size"])] for task, ds in datasets.items()}
    ignore = getattr(datasets.get(Task.SEGMENTATION), "ignore_index", None)
    space = LabelSpace(codec.num_classes, ignore) if Task.SEGMENTATION in codec.tasks else None
    rows = scores_per_snr(codec, channel, batches, list(v["snr_db"]), v["seed"], label_space=space, device=device,
                          metrics=("psnr", "miou"))
    out = {}
    for task in codec.tasks:
        col = "psnr" if task is Task.RECONSTRUCTION else "miou"
        out[task.value] = sum(r[col] for r in rows) / len(rows)
    return out


def _final_files(paths: list[str | os.PathLike]) -> dict[Path, dict[str, Any]]:
    """The final weights among ``paths`` (files, or training output folders) with their metadata."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q / f"{q.name}.safetensors" for q in p.iterdir() if (q / f"{q.name}.safetensors").is_file())
            if not found:
                raise ConfigError(f"no final weights (<label>/<label>.safetensors) in {p}")
            files += found
        elif not p.is_file():
            raise ConfigError(f"weights file {os.fspath(p)!r} not found")
        else:
            files.append(p)
    metas = {p: read_meta(p) for p in files}
    for p, meta in metas.items():
        if meta.get("kind") == "checkpoint" or "method" not in meta or meta.get("step") != meta.get("steps"):
            raise ConfigError(f"{p} is not the final weights of a finished `semsim train` run "
                              f"(ship <output>/<label>/<label>.safetensors)")
    return metas


def _compare(path: Path, name: str, folder: Path, shipped: dict[str, dict[str, Any]],
             validation: Mapping[str, Any] | None, device: str, log, problems: list[str]
             ) -> tuple[dict[str, float], dict[str, float]]:
    """Scores of candidate ``path`` and of the shipped weights it would replace (``{}`` if none);
    a regression on any task is added to ``problems``, and both are given to ``log``."""
    old = folder / shipped[name]["file"] if name in shipped else None
    new_s = score_weights(path, validation, device)
    old_s = score_weights(old, validation, device) if old is not None and old.is_file() else {}
    worse = [t for t in new_s if t in old_s and not new_s[t] >= old_s[t]]
    if log is not None:
        log(f"{name}: " + ", ".join(f"{t} {new_s[t]:.4f} (shipped {old_s[t]:.4f})" if t in old_s
                                    else f"{t} {new_s[t]:.4f} (new)" for t in new_s))
    if worse:
        problems.append(f"{name} regresses on {', '.join(f'{t} ({new_s[t]:.4f} < {old_s[t]:.4f})' for t in worse)}")
    return new_s, old_s


def ship_weights(paths: list[str | os.PathLike], folder: str | os.PathLike | None = None, force: bool = False,
                 validation: Mapping[str, Any] | None = None, device: str = "cpu",
                 log=None) -> dict[str, dict]:
    """Ship one training round: copy final weights written by ``semsim train`` into the shipped-weights
    folder (default the package's ``pretrained/``) as ``<method>-<preset>.safetensors`` and record
    each in ``manifest.json`` (sha256, size, how it was trained, its cumulative budget and both
    validation scores).

    A round ships whole or not at all. Refused (unless ``force``) when

    - any candidate scores below the weights it would replace on the fixed validation set
      (:data:`SHIP_VALIDATION`, :func:`score_weights`) for any of its tasks — a regression;
    - the candidates' cumulative training budgets (images x pixels per task, :func:`cumulative`)
      differ, or differ from a shipped method the round leaves out: every method keeps an
      identical budget, so comparisons stay fair.

    :param paths: final ``<label>.safetensors`` files (not checkpoints), or training output folders
        (every ``<label>/<label>.safetensors`` in them).
    :param log: called with one line per candidate (its scores), e.g. ``print``.
    :returns: the new manifest entries by name.
    :raises ConfigError: a checkpoint, a file without training metadata, a regression or unequal budgets.
    """
    import shutil

    folder = Path(folder or PRETRAINED_DIR)
    metas = _final_files(paths)
    files = list(metas)
    names = {p: f"{m['method']}-{(m.get('spec') or {}).get('preset', 'small')}" for p, m in metas.items()}
    if len(set(names.values())) < len(names):
        raise ConfigError(f"two candidates for the same shipped name: {sorted(names.values())}")
    shipped = manifest(folder)
    budgets = {names[p]: cumulative(m)["pixels"] for p, m in metas.items()}
    for name, entry in shipped.items():
        if name not in budgets:
            budgets[f"{name} (shipped, not in this round)"] = cumulative(entry)["pixels"]
    problems = []
    if len(set(budgets.values())) > 1:
        problems.append("unequal cumulative training budgets (pixels per task: " +
                        ", ".join(f"{n} {b:.4g}" for n, b in sorted(budgets.items())) +
                        "); ship every method of a round together, trained alike")
    scores = {names[p]: _compare(p, names[p], folder, shipped, validation, device, log, problems) for p in files}
    if problems and not force:
        raise ConfigError("refusing to ship (nothing was written): " + "; ".join(problems) +
                          "; use --force to ship anyway")
    v = dict(SHIP_VALIDATION, **(validation or {}))
    described = {"set": {t: v[t] for t in ("reconstruction", "segmentation")}, "channel": v["channel"],
                 "snr_db": v["snr_db"], "metric": "mean PSNR (dB) / mIoU over the SNRs"}
    entries = {}
    for p in files:
        meta, name = metas[p], names[p]
        target = folder / f"{name}.safetensors"
        with atomic_file(target) as tmp:
            shutil.copyfile(p, tmp)
            os.chmod(tmp, 0o644)
        new_s, old_s = scores[name]
        entries[name] = {"file": target.name, "sha256": sha256(target), "bytes": target.stat().st_size,
                         "preset": (meta.get("spec") or {}).get("preset", "small"), "label": meta.get("label", ""),
                         **{k: meta[k] for k in SHIPPED_FIELDS if k in meta},
                         "cumulative": cumulative(meta),
                         "validation": {**described, "score": new_s, "replaced_score": old_s,
                                        "forced": bool(problems)}}
        if not entries[name].get("train_channel"):
            entries[name]["train_channel"] = NO_TRAIN_CHANNEL
    file = folder / "manifest.json"
    doc = json.loads(file.read_text()) if file.is_file() else {"weights": {}}
    doc.setdefault("weights", {}).update(entries)
    doc["weights"] = dict(sorted(doc["weights"].items()))
    with atomic_file(file) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=2) + "\n")
    return entries
