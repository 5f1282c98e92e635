"""Learned codecs' presets and shipped weights, by name.

A preset is a learned codec's architecture as data: ``{method: {preset: {...}}}`` in a YAML file
beside the model (``semantic/presets.yaml``, ``baselines/*_presets.yaml``), read into the codec's
typed preset (a dataclass, ``LearnedCodec.preset_type``) so a misspelt key fails when the preset
is loaded, with its name and the valid keys. Shipped weights are named ``<method>-<preset>`` in
``semsim/pretrained/manifest.json``; ``weights: pretrained`` asks a codec for those of its preset,
like timm's ``pretrained=True``::

    >>> from semsim import Budget, build_codec
    >>> codec = build_codec({"name": "deepjscc", "weights": "pretrained"}, budget=Budget("cbr", 1 / 16))
    >>> codec.weights
    'deepjscc-small.safetensors'
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .errors import ConfigError, choices
from .typed import from_mapping


def preset_file(path: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The presets in the YAML file ``path``, ``{method: {preset: {...}}}`` (read once per process;
    do not modify the result: :func:`load_preset` gives copies)."""
    return _read_yaml(str(path))


@functools.lru_cache(maxsize=None)
def _read_yaml(path: str) -> Any:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def load_preset(path: str | Path, method: str, name: str, preset_type: type | None = None) -> dict[str, Any]:
    """A copy of preset ``name`` of ``method`` from the YAML file ``path`` (``{method: {preset: {...}}}``),
    as plain data (what a point's hash and a weights file's ``config`` hold).

    :param preset_type: the method's typed preset (a dataclass); given, the preset is checked
        against it (:func:`semsim.typed.from_mapping`), so a misspelt or missing key fails here.
    :raises ConfigError: an unknown preset (listing the valid ones) or a key ``preset_type`` lacks.
    """
    import yaml

    presets = preset_file(path)[method]
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r} for method {method!r}; valid choices: {choices(presets)}")
    cfg = yaml.safe_load(yaml.safe_dump(presets[name]))
    if preset_type is not None:
        from_mapping(preset_type, cfg, f"{method} preset {name!r} ({Path(path).name})")
    return cfg


#: ``weights: pretrained``: a learned codec's shipped weights for its preset
PRETRAINED = "pretrained"


def shipped_weights(method: str, preset: str) -> str | None:
    """The name of the shipped weights of ``method`` at ``preset`` (``<method>-<preset>`` in
    ``semsim/pretrained/manifest.json``), or None where none ship."""
    from .weights import manifest

    name = f"{method}-{preset}"
    entry = manifest().get(name)
    if entry is None or entry.get("method", method) != method or entry.get("preset", preset) != preset:
        return None
    return name


def weights_file(method: str, preset: str, weights: str | Path) -> Path:
    """The weights file a learned codec loads: ``"pretrained"`` (the shipped file of its preset), a
    shipped name, or a ``.safetensors`` path (see :func:`semsim.weights.resolve_weights`).

    :raises ConfigError: ``"pretrained"`` where no weights ship for this method and preset (the
        message lists the shipped names); a missing path, an unknown name or a bad checksum.
    """
    from .weights import manifest, resolve_weights

    if weights == PRETRAINED:
        name = shipped_weights(method, preset)
        if name is None:
            raise ConfigError(f"weights: pretrained: no shipped weights for method {method!r} at preset {preset!r}; "
                              f"shipped: {choices(sorted(manifest())) or 'none'}; give a .safetensors file instead")
        weights = name
    return resolve_weights(weights)
