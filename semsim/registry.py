"""One registry for every pluggable kind: channels, codecs and datasets.

Classes register themselves by name with :func:`register`; scenario files name them, and
:func:`build` turns a spec (a name, or a mapping with ``name`` plus keyword arguments) into an
object. Unknown names and unknown keyword arguments raise :class:`~semsim.errors.ConfigError`
listing the valid choices.

The registry sits at the bottom of the import graph: it imports nothing of semsim's but the
errors. Importing ``semsim`` registers the built-ins (:mod:`semsim.builtins`); a user's own
channels, codecs and datasets come from plugin modules: every entry point of the
``semsim.plugins`` group (:data:`ENTRY_POINT_GROUP`, loaded before the first lookup) and modules
named by the CLI's ``--plugin MODULE`` (:func:`load_plugin`). A learned codec class (one with a
``method`` attribute) gets its registered name there, so the name is written once.

Example::

    >>> from semsim.registry import build
    >>> ch = build("channel", {"name": "rayleigh", "block_length": 64})
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigError, SemsimError, choices

KINDS = ("channel", "codec", "dataset")
_REGISTRY: dict[str, dict[str, tuple[Callable[..., Any], dict[str, Any]]]] = {k: {} for k in KINDS}
#: the entry-point group whose modules are loaded as plugins (``[project.entry-points."semsim.plugins"]``)
ENTRY_POINT_GROUP = "semsim.plugins"
_entry_points_loaded = False


def register(kind: str, name: str, **preset: Any) -> Callable:
    """Class decorator: register ``cls`` as ``name`` of ``kind``.

    ``preset`` keyword arguments are bound in, so one class can be registered under several names
    (``register("codec", "jpeg+ldpc", source="jpeg")``). Decorators stack. A class with a ``method``
    attribute (a learned codec: its key in its presets file and in shipped weights' names) gets
    ``name`` there, unless the class sets its own ``method``.
    """
    if kind not in _REGISTRY:
        raise ConfigError(f"unknown registry kind {kind!r}; valid choices: {choices(KINDS)}")

    def deco(cls):
        if name in _REGISTRY[kind]:
            raise ConfigError(f"{kind} {name!r} is registered twice")
        _REGISTRY[kind][name] = (cls, dict(preset))
        if hasattr(cls, "method") and not cls.__dict__.get("method"):
            cls.method = name
        return cls

    return deco


def load_plugin(module: str) -> None:
    """Import a plugin module by its dotted name; its ``@register`` decorators add its channels,
    codecs and datasets. A module already imported is not imported again.

    :raises ConfigError: the module cannot be imported (the message names it and the cause).
    """
    try:
        importlib.import_module(module)
    except Exception as e:  # a plugin's own error, whatever it is, becomes one line naming the module
        raise ConfigError(f"cannot load plugin module {module!r}: {type(e).__name__}: {e}") from e


def load_entry_points() -> None:
    """Load every module of the :data:`ENTRY_POINT_GROUP` entry points of the installed packages,
    once per process (called before the first lookup)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as e:
            raise ConfigError(f"cannot load plugin {ep.name!r} (module {ep.value!r}, entry point group "
                              f"{ENTRY_POINT_GROUP!r}): {type(e).__name__}: {e}") from e


def names(kind: str) -> list[str]:
    """Registered names of ``kind``, sorted."""
    load_entry_points()
    return sorted(_REGISTRY[kind])


def lookup(kind: str, name: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The class and preset keyword arguments registered as ``name``."""
    load_entry_points()
    if not isinstance(name, str) or name not in _REGISTRY[kind]:
        raise ConfigError(f"unknown {kind} {name!r}; valid choices: {choices(sorted(_REGISTRY[kind]))}")
    return _REGISTRY[kind][name]


def parameters(kind: str, name: str) -> dict[str, inspect.Parameter]:
    """The keyword arguments a scenario may give for ``name`` (preset ones excluded)."""
    cls, preset = lookup(kind, name)
    params = inspect.signature(cls).parameters
    return {k: p for k, p in params.items()
            if k not in preset and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def resolved(kind: str, spec: str | Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``spec`` with every option its class takes: the given values, the registered preset ones and
    the code's defaults for the rest (options without a default and not given are left out).

    Two specs with equal ``resolved`` build the same object from the same code; a changed default
    changes it. ``skip`` leaves options out (a sweep axis the caller records elsewhere).
    """
    name, kwargs = split_spec(spec)
    cls, preset = lookup(kind, name)
    out: dict[str, Any] = {"name": name, **preset}
    for key, p in parameters(kind, name).items():
        if key in skip:
            continue
        if key in kwargs:
            out[key] = kwargs[key]
        elif p.default is not p.empty:
            out[key] = p.default
    return out


def split_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``"awgn"`` or ``{"name": "awgn", ...}`` → ``("awgn", {...})``."""
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ConfigError(f"expected a name or a mapping with a 'name' key, got {spec!r}")
    kwargs = dict(spec)
    return kwargs.pop("name"), kwargs


def check_kwargs(kind: str, name: str, kwargs: Mapping[str, Any], extra: tuple[str, ...] = ()) -> None:
    """Raise :class:`ConfigError` for keyword arguments ``name`` does not take."""
    valid = set(parameters(kind, name)) | set(extra)
    unknown = sorted(set(kwargs) - valid)
    if unknown:
        raise ConfigError(f"{kind} {name!r}: unknown option(s) {choices(unknown)}; "
                          f"valid choices: {choices(sorted(valid)) or 'none'}")


def build(kind: str, spec: str | Mapping[str, Any], **extra: Any) -> Any:
    """Build a registered object from a spec.

    :param kind: ``"channel"``, ``"codec"`` or ``"dataset"``.
    :param spec: a registered name, or a mapping ``{"name": ..., **kwargs}``.
    :param extra: keyword arguments supplied by the caller (e.g. ``budget`` for codecs).
    """
    name, kwargs = split_spec(spec)
    cls, preset = lookup(kind, name)
    check_kwargs(kind, name, kwargs)
    check_finite(kwargs, f"{kind} {name!r}")
    try:
        return cls(**preset, **kwargs, **extra)
    except SemsimError:
        raise
    except (MemoryError, RuntimeError) as e:  # an option so large that building runs out of memory
        if not isinstance(e, MemoryError) and "alloc" not in str(e).lower():
            raise
        raise ConfigError(f"{kind} {name!r}: not enough memory to build it with options {dict(kwargs)!r}; "
                          f"an option is too large") from None
    except (TypeError, ValueError, OverflowError) as e:  # wrong value types or values reach here
        raise ConfigError(f"{kind} {name!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def check_finite(options: Mapping[str, Any], what: str) -> None:
    """Raise :class:`ConfigError` if a numeric option (or a number inside a list option) is NaN or
    infinite: no channel, codec or dataset takes one."""
    for key, value in options.items():
        for v in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{what}: option {key!r} must be a finite number, got {v!r}")
