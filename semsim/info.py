"""``semsim info``: parameter counts of learned methods, built on PyTorch's meta device.

Building on the meta device allocates no memory and loads no weights, so even the ``paper``
presets (hundreds of millions of parameters) are counted instantly.
"""
from __future__ import annotations

from torch import nn

from . import registry
from .codec import Budget
from .errors import ConfigError, choices

MIB = 2**20


def learned_methods() -> dict[str, list[str]]:
    """Registered codec name → its preset names, for every codec with presets."""
    out = {}
    for name in registry.names("codec"):
        cls, _ = registry.lookup("codec", name)
        presets = getattr(cls, "preset_names", lambda: [])()
        if presets:
            out[name] = list(presets)
    return out


def build_meta(method: str, preset: str) -> nn.Module:
    """The codec ``method`` at ``preset`` on the meta device (shapes only)."""
    methods = learned_methods()
    if method not in methods:
        raise ConfigError(f"unknown learned method {method!r}; valid choices: {choices(methods)}")
    if preset not in methods[method]:
        raise ConfigError(f"unknown preset {preset!r} for method {method!r}; valid choices: "
                          f"{choices(methods[method])}")
    return registry.build("codec", {"name": method, "preset": preset, "meta": True}, budget=Budget("cbr", 1 / 16))


def parameter_counts(module: nn.Module) -> dict[str, int]:
    """Parameters per top-level child module (those with any), and ``total``."""
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in module.named_children()}
    counts = {k: v for k, v in counts.items() if v}
    counts["total"] = sum(p.numel() for p in module.parameters())
    return counts


def bf16_mib(module: nn.Module) -> float:
    """Size of the state dict in MiB with floating tensors stored as bf16 (file overhead aside)."""
    size = 0
    for t in module.state_dict().values():
        size += t.numel() * (2 if t.is_floating_point() else t.element_size())
    return size / MIB


def describe_method(method: str, preset: str) -> str:
    """A table of parameters per module of ``method`` at ``preset``."""
    codec = build_meta(method, preset)
    counts = parameter_counts(codec)
    width = max(len(k) for k in counts)
    lines = [f"{method} ({getattr(codec, 'label', method)}), preset {preset!r}:"]
    for name, n in counts.items():
        share = 100.0 * n / max(counts["total"], 1)
        lines.append(f"  {name:<{width}}  {n:>13,d}  {share:5.1f} %")
    lines.append(f"  weights in bf16: {bf16_mib(codec):.2f} MiB")
    return "\n".join(lines)


def summary() -> str:
    """One line per learned method and preset: parameters and bf16 size."""
    lines = [f"{'method':<16} {'preset':<8} {'parameters':>14} {'bf16 MiB':>9}"]
    for method, presets in learned_methods().items():
        for preset in presets:
            codec = build_meta(method, preset)
            lines.append(f"{method:<16} {preset:<8} {parameter_counts(codec)['total']:>14,d} "
                         f"{bf16_mib(codec):>9.2f}")
    return "\n".join(lines)
