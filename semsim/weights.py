"""Weights and optimiser state as safetensors files (never pickle).

A weights file holds a codec's ``state_dict()`` and, in the safetensors metadata under the key
``"semsim"``, a JSON object with the codec's architecture (``"config"``: :meth:`Codec.config`),
its ``"label"`` and whatever the writer adds (training channel, SNR range, steps, git commit …).
:func:`load_weights` refuses a file whose config, keys or shapes differ from the codec's, naming
what differs, so a preset edited after training cannot silently load mismatched weights.

Optimiser state is kept apart (:func:`save_optimizer`): its tensors become safetensors entries
``state.<param index>.<name>`` and everything else (``param_groups``, non-tensor state values)
goes to the metadata JSON.

Every file is written atomically (temporary file in the same folder, then rename), so a reader
sees the old file or the new one, never a torn one.

Example::

    >>> import tempfile, torch
    >>> from semsim.codec import Budget, Codec
    >>> class Lin(Codec):
    ...     def __init__(self, budget):
    ...         super().__init__(budget)
    ...         self.lin = torch.nn.Linear(2, 2)
    ...     def config(self):
    ...         return {"width": 2}
    >>> path = save_weights(Lin(Budget("cbr", 0.1)), tempfile.mkdtemp() + "/lin.safetensors", {"steps": 3})
    >>> meta = load_weights(Lin(Budget("cbr", 0.1)), path)
    >>> meta["steps"], meta["config"], len(meta["sha256"])
    (3, {'width': 2}, 64)
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError
from .files import atomic_file, sha256

META_KEY = "semsim"
#: how many differing keys an error message names before "… and N more"
SHOWN = 4


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, meta: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    return path


def _read(path: Path) -> dict[str, Any]:
    """The semsim metadata of a file; ConfigError on any problem."""
    from safetensors import safe_open

    if not path.is_file():
        raise ConfigError(f"weights file '{path}' not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error type, or OSError/ValueError
        raise ConfigError(f"'{path}' is not a readable safetensors file ({type(e).__name__}: {e})") from None
    if META_KEY not in raw:
        raise ConfigError(f"'{path}' is a safetensors file but not a semsim one (no {META_KEY!r} metadata)")
    try:
        meta = json.loads(raw[META_KEY])
    except json.JSONDecodeError as e:
        raise ConfigError(f"'{path}': its {META_KEY!r} metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"'{path}': its {META_KEY!r} metadata is not a JSON object")
    return meta


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as e:
        raise ConfigError(f"cannot read the tensors of '{path}' ({type(e).__name__}: {e})") from None


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a semsim weights (or optimiser) file, without loading tensors.

    :raises ConfigError: missing, unreadable or not a semsim file.
    """
    return _read(Path(path))


# --- weights ------------------------------------------------------------------------------------

def save_weights(codec: torch.nn.Module, path: str | os.PathLike, meta: Mapping[str, Any],
                 dtype: torch.dtype = torch.bfloat16) -> Path:
    """Write ``codec.state_dict()`` to ``path`` atomically.

    :param codec: a :class:`~semsim.codec.Codec` (any module with ``config()`` and ``label``).
    :param path: the ``.safetensors`` file to write.
    :param meta: JSON-serialisable provenance; ``"config"`` and ``"label"`` are added.
    :param dtype: floating tensors are cast to it (bf16 halves the file; fp32 for checkpoints);
        integer and complex tensors are kept as they are.
    :returns: ``path``.
    """
    tensors = {}
    for key, t in codec.state_dict().items():
        t = t.detach()
        t = t.to("cpu", dtype=dtype, copy=True) if t.is_floating_point() else t.to("cpu", copy=True)
        tensors[key] = t.contiguous()
    full = {**dict(meta), "config": codec.config(), "label": getattr(codec, "display_name", ""),
            "tensors_sha256": tensors_sha256(tensors)}
    try:
        json.dumps(full)
    except TypeError as e:
        raise ConfigError(f"weights metadata must be plain JSON data: {e}") from None
    return _atomic_save(tensors, Path(path), full)


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a state dict's tensors (sorted by name):
    written into a weights file's metadata by :func:`save_weights` and checked by
    :func:`load_weights`, so a file corrupted or edited after it was written is refused whatever
    its name or path (safetensors itself keeps no checksum)."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        t = t.reshape(-1)
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out if out or not prefix else {prefix: {}}
    return {prefix: d}


def _config_diff(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    a, b = _flat(saved), _flat(current)
    out = []
    for k in sorted(set(a) | set(b)):
        if k not in a:
            out.append(f"{k}: absent from the file, codec has {b[k]!r}")
        elif k not in b:
            out.append(f"{k}: file has {a[k]!r}, absent from the codec")
        elif a[k] != b[k]:
            out.append(f"{k}: file has {a[k]!r}, codec has {b[k]!r}")
    return out


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" … and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def train_condition(meta: Mapping[str, Any]) -> str:
    """The training channel of weights' metadata, with the SNR where it was one fixed value:
    ``"awgn"`` (SNR drawn from a range) or ``"awgn at 10 dB"``; ``""`` when unknown."""
    channel = meta.get("train_channel", "")
    snr = meta.get("train_snr_db") or []
    if channel and len(snr) == 2 and snr[0] == snr[1]:
        return f"{channel} at {snr[0]:g} dB"
    return channel


def load_weights(codec: torch.nn.Module, path: str | os.PathLike) -> dict[str, Any]:
    """Load a weights file into ``codec`` after checking that it fits.

    Weights saved by an older semsim pass first through the codec's ``upgrade_weights(meta,
    tensors) → (config, tensors)`` (:meth:`semsim.codec.LearnedCodec.upgrade_weights`), which makes
    them fit without changing what they compute. Tensors are cast to the dtypes of the codec's own
    parameters and buffers and copied onto its device. Sets ``codec.train_channel`` (from the
    metadata, ``""`` if absent) and ``codec.weights_sha256``.

    :returns: the metadata, plus ``"sha256"`` of the file; where an upgrade changed the config,
        ``"config"`` is the upgraded one and ``"upgraded_from"`` the file's.
    :raises ConfigError: the file is missing, unreadable or not a semsim weights file; its
        ``config`` differs from ``codec.config()`` (the message names each differing key with both
        values); or its keys or shapes differ from the codec's state dict (the first few named).
    """
    path = Path(path)
    meta = _read(path)
    if "config" not in meta:
        raise ConfigError(f"'{path}' is not a semsim weights file (its metadata has no 'config')")
    tensors = _tensors(path)
    expected = meta.get("tensors_sha256")
    if expected is not None and tensors_sha256(tensors) != expected:
        raise ConfigError(f"weights '{path}' are corrupt: their tensors do not match the checksum written with "
                          f"them (tensors_sha256 {expected[:12]}…); retrain, or restore the file")
    upgrade = getattr(codec, "upgrade_weights", None)
    saved = meta["config"]
    if upgrade is not None:
        saved, tensors = upgrade(meta, tensors)
    current = json.loads(json.dumps(codec.config()))  # tuples → lists, as the file stores them
    if saved != current:
        raise ConfigError(f"weights '{path}' were saved for another configuration of "
                          f"{meta.get('label') or 'this codec'}: " + "; ".join(_config_diff(saved, current)))
    own = codec.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    shapes = [f"{k} (file {tuple(tensors[k].shape)}, codec {tuple(own[k].shape)})"
              for k in sorted(set(own) & set(tensors)) if tensors[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing key(s) {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected key(s) {_names(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch for {_names(shapes)}")
    if problems:
        raise ConfigError(f"weights '{path}' do not fit {getattr(codec, 'display_name', 'the codec')}: "
                          + "; ".join(problems))
    codec.load_state_dict({k: tensors[k].to(own[k].dtype) for k in own}, strict=True)
    digest = sha256(path)
    codec.train_channel = train_condition(meta) if getattr(codec, "channel_in_training", True) else ""
    codec.weights_sha256 = digest
    upgraded = {"config": saved, "upgraded_from": meta["config"]} if saved != meta["config"] else {}
    return {**meta, **upgraded, "sha256": digest}


# --- optimiser state ----------------------------------------------------------------------------

def _encode(value: Any) -> Any:
    """Plain JSON, with tuples marked so that they come back as tuples (AdamW's ``betas``)."""
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"optimizer state value {value!r} ({type(value).__name__}) cannot be saved")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def save_optimizer(optimizer: torch.optim.Optimizer, path: str | os.PathLike,
                   meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``optimizer.state_dict()`` to ``path`` atomically, in full precision.

    Tensors (moments, step counts) become entries ``state.<param index>.<name>`` (also
    ``param_groups.<group>.<name>`` for tensor hyper-parameters); the rest goes to the metadata
    JSON together with ``meta``.
    """
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state_plain: dict[str, dict[str, Any]] = {}

    def split(entries: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        """Move the tensors of ``entries`` into ``tensors`` under ``prefix.name``; return the rest."""
        plain = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{name}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                plain[name] = value
        return plain

    for idx, entries in sd["state"].items():
        state_plain[str(idx)] = split(entries, f"state.{idx}")
    groups = [split(group, f"param_groups.{g}") for g, group in enumerate(sd["param_groups"])]
    full = {**dict(meta or {}), "optimizer": type(optimizer).__name__,
            "state_keys": sorted(str(k) for k in sd["state"]),
            "state": _encode(state_plain), "param_groups": _encode(groups)}
    return _atomic_save(tensors, Path(path), full)


def load_optimizer(optimizer: torch.optim.Optimizer, path: str | os.PathLike) -> dict[str, Any]:
    """Restore optimiser state written by :func:`save_optimizer`; returns its metadata.

    :raises ConfigError: missing or unreadable file, another optimiser type, or a different number
        of parameter groups or parameters.
    """
    path = Path(path)
    meta = _read(path)
    if "param_groups" not in meta or "state" not in meta:
        raise ConfigError(f"'{path}' is not a semsim optimizer file")
    if meta.get("optimizer") != type(optimizer).__name__:
        raise ConfigError(f"'{path}' holds {meta.get('optimizer')} state, not {type(optimizer).__name__}")
    groups = _decode(meta["param_groups"])
    own = optimizer.state_dict()["param_groups"]
    if [len(g["params"]) for g in groups] != [len(g["params"]) for g in own]:
        raise ConfigError(f"'{path}' was saved for {[len(g['params']) for g in groups]} parameters per group, "
                          f"this optimizer has {[len(g['params']) for g in own]}")
    tensors = _tensors(path)
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in _decode(meta["state"]).items()}
    for key, t in tensors.items():
        kind, index, name = key.split(".", 2)
        if kind == "state":
            state.setdefault(int(index), {})[name] = t
        else:
            groups[int(index)][name] = t
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as e:
        raise ConfigError(f"cannot restore optimizer state from '{path}': {e}") from None
    return meta


# --- shipped weights ------------------------------------------------------------------------------
PRETRAINED_DIR = Path(__file__).with_name("pretrained")


def manifest(folder: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Shipped weights: name → entry (``file``, ``sha256``, ``method``, ``preset`` and how it was
    trained), from ``manifest.json`` in ``folder`` (default: the package's ``pretrained/``)."""
    file = Path(folder or PRETRAINED_DIR) / "manifest.json"
    if not file.is_file():
        return {}
    return json.loads(file.read_text()).get("weights", {})


def resolve_weights(spec: str | os.PathLike, folder: str | os.PathLike | None = None) -> Path:
    """A weights file from a path (``*.safetensors``, ``~`` and ``$VARS`` expanded) or a shipped
    name from the manifest, whose sha256 must match the manifest's.

    :raises ConfigError: a missing path, an unknown name (listing the shipped names) or a shipped
        file whose checksum differs from the manifest.
    """
    from .data.images import expand_path

    text = os.fspath(spec)
    if text.endswith(".safetensors") or os.sep in text:
        path = expand_path(text)
        if not path.is_file():
            raise ConfigError(f"weights file {text!r} {'is a folder, not a file' if path.is_dir() else 'not found'}")
        # a shipped file given by its path is checked against the manifest like one given by name
        home = Path(folder or PRETRAINED_DIR)
        for name, entry in manifest(home).items():
            candidate = home / entry["file"]
            if candidate.is_file() and path.resolve() == candidate.resolve():
                return resolve_weights(name, home)
        return path
    shipped = manifest(folder)
    if text not in shipped:
        names = ", ".join(map(repr, sorted(shipped))) or "none yet"
        raise ConfigError(f"unknown weights {text!r}: give a .safetensors path or a shipped name "
                          f"(shipped: {names})")
    entry = shipped[text]
    path = Path(folder or PRETRAINED_DIR) / entry["file"]
    if not path.is_file():
        raise ConfigError(f"shipped weights {text!r}: file {entry['file']!r} is missing from the package")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise ConfigError(f"shipped weights {text!r}: sha256 {digest[:12]}… differs from the manifest's "
                          f"{entry['sha256'][:12]}…; the file is corrupt or was replaced")
    return path



def cumulative(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The training behind weights, all rounds together: ``steps``, ``images`` (crops per task),
    ``pixels`` (images x crop²), ``wall_seconds`` and the list of ``rounds`` (recipe, device, steps,
    batch, crop, wall time, where each started). Weights written before rounds were recorded count
    as one round from scratch."""
    if "cumulative" in meta:
        return dict(meta["cumulative"])
    steps = int(meta.get("steps") or 0)
    if not steps:
        return {"steps": 0, "images": 0, "pixels": 0, "wall_seconds": 0.0, "rounds": []}
    batch, crop = int(meta.get("batch_size") or 0), int(meta.get("crop") or 0)
    one = {"recipe": meta.get("recipe", ""), "scenario": meta.get("scenario", ""), "steps": steps,
           "batch_size": batch, "crop": crop, "precision": meta.get("precision", ""),
           "device_name": meta.get("device_name", ""), "world_size": meta.get("world_size", 1),
           "wall_seconds": float(meta.get("wall_seconds") or 0.0), "init": {"from": "scratch", "sha256": ""},
           "images": steps * batch, "pixels": steps * batch * crop ** 2}
    return {"steps": steps, "images": one["images"], "pixels": one["pixels"], "wall_seconds": one["wall_seconds"],
            "rounds": [one]}
