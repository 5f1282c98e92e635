"""Typed configuration from plain data: a YAML mapping checked against a dataclass at load time.

A model preset or a page layout is data (YAML) read into a dataclass by :func:`from_mapping`, so a
misspelt or missing key fails when it is loaded, with its path and the valid keys, instead of as a
``KeyError`` deep inside a constructor. Values are kept as given (an ``int`` stays an ``int`` in a
``float`` field), so the plain data (:func:`dataclasses.asdict`) hashes and compares as before.

Example::

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Dit:
    ...     width: int
    ...     depth: int
    >>> from_mapping(Dit, {"width": 128, "depht": 4}, "semantic preset 'small': dit")
    Traceback (most recent call last):
    ...
    semsim.errors.ConfigError: semantic preset 'small': dit: unknown key 'depht'; valid keys: 'width', 'depth'
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import ConfigError, choices

T = TypeVar("T")


def from_mapping(cls: type[T], data: Any, what: str) -> T:
    """``data`` (a mapping) as the dataclass ``cls``; nested dataclass fields are read the same way.

    :param what: where ``data`` comes from, for messages (``"deepjscc preset 'small'"``).
    :raises ConfigError: ``data`` is not a mapping, has a key ``cls`` lacks (the message names it
        and the valid keys), lacks a key without a default, or gives a number, list or mapping
        where the field wants another kind of value.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what}: expected a mapping of {choices(f.name for f in dataclasses.fields(cls))}, "
                          f"got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"{what}: unknown key {choices(unknown)}; valid keys: {choices(fields)}")
    missing = [k for k, f in fields.items() if k not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{what}: missing key {choices(missing)}")
    values = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = from_mapping(hint, value, f"{what}: {key}")
        else:
            _check_kind(hint, value, f"{what}: {key}")
            values[key] = value
    return cls(**values)


def _check_kind(hint: Any, value: Any, what: str) -> None:
    """Refuse a value of the wrong kind for the simple hints presets use (int, float, bool, str,
    list, dict); other hints are not checked here."""
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        ok = isinstance(value, bool)
    elif origin is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif origin is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif origin is str:
        ok = isinstance(value, str)
    elif origin in (list, tuple):
        ok = isinstance(value, (list, tuple))
    elif origin is dict:
        ok = isinstance(value, Mapping)
    else:
        return
    if not ok:
        raise ConfigError(f"{what}: expected {getattr(origin, '__name__', origin)}, got {value!r}")
