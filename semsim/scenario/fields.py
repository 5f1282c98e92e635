"""The checks every scenario kind (and ``semsim transmit``) applies to its values: types, finite
numbers, SNRs (:func:`parse_snr`, :func:`parse_snr_list`), budgets (:func:`parse_budget`, and
:func:`check_budget_fits` for a codec at a budget), specs and their labels (:func:`spec_key`).
Every problem is a one-line :class:`~semsim.errors.ConfigError` naming the key."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import registry
from ..channels import SNR_RANGE_DB
from ..codec import Budget, parse_ratio
from ..errors import ConfigError, choices

#: channel uses per image a budget may allow (CBR 1 on a 333-megapixel image)
MAX_CHANNEL_USES = 10**9
#: images per batch
MAX_BATCH = 4096
#: bits a BER point may simulate
MAX_BITS = 10**13
#: SNR values of one sweep
MAX_SNR_POINTS = 1000
#: characters in a scenario's name and in its output path
MAX_NAME_CHARS, MAX_PATH_CHARS = 200, 4096


def spec_key(spec: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    """``{"name": "rayleigh", "block_length": 8}`` → ``"rayleigh(block_length=8)"``."""
    opts = {k: v for k, v in spec.items() if k != "name" and k not in skip}
    if not opts:
        return str(spec["name"])
    return f"{spec['name']}(" + ",".join(f"{k}={opts[k]}" for k in sorted(opts)) + ")"


def safe_name(text: str) -> str:
    """``text`` as a file or folder name: characters other than letters, digits and ``-_.+=``
    become ``_`` (``"method"`` if nothing is left)."""
    return "".join(c if c.isalnum() or c in "-_.+=" else "_" for c in text).strip("._") or "method"


def expect(value: Any, types: type | tuple[type, ...], what: str) -> None:
    """:class:`ConfigError` unless ``value`` is of ``types`` (a bool is not an int)."""
    if isinstance(value, bool) and types is not bool or not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{what} must be of type {names}, got {value!r} ({type(value).__name__})")


def text(value: Any, what: str, limit: int) -> None:
    """A non-empty string of at most ``limit`` printable characters (a name or a path)."""
    expect(value, str, what)
    if not value.strip() or len(value) > limit or not value.isprintable():
        raise ConfigError(f"{what} must be non-empty printable text of at most {limit} characters, "
                          f"got {value[:80]!r}")


def finite(value: Any, what: str) -> float:
    """A finite int or float (not a bool) as a float."""
    expect(value, (int, float), what)
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ConfigError(f"{what} must be a finite number, got {value!r}")
    return out


def finite_ratio(value: Any, what: str = "cbr") -> float:
    """:func:`~semsim.codec.parse_ratio`, refusing what is not a finite number (``"1e400"``, ``.nan``)."""
    try:
        out = parse_ratio(value, what)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ConfigError(f"{what} must be a finite number or a fraction like '1/16', got {value!r}")
    return out


def refuse_repeats(labels: list[str], what: str) -> None:
    """A repeated entry would duplicate rows (and double n in the confidence intervals)."""
    seen = set()
    for label in labels:
        if label in seen:
            raise ConfigError(f"{what} lists {label} twice; each entry may appear once")
        seen.add(label)


def as_list(value: Any, what: str) -> list[Any]:
    """A required value as a non-empty list (a single value becomes a list of one)."""
    if value is None:
        raise ConfigError(f"missing required key {what!r}")
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ConfigError(f"{what!r} must not be empty")
    return items


def parse_spec(item: Any, kind: str, what: str) -> dict[str, Any]:
    """Normalise a spec to ``{"name": ..., **options}`` and check the name (registry ``kind``)."""
    if not isinstance(item, (str, dict)):
        raise ConfigError(f"each entry of {what!r} must be a name or a mapping with 'name', got {item!r}")
    name, kwargs = registry.split_spec(item)
    expect(name, str, f"{what} name")
    registry.lookup(kind, name)
    return {"name": name, **kwargs}


def parse_channels(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """A sweep's ``channels``: specs, each built once (which checks its options), none repeated."""
    specs = [parse_spec(c, "channel", "channels") for c in as_list(raw.get("channels"), "channels")]
    for s in specs:
        registry.build("channel", s)  # checks options and their values
    refuse_repeats([spec_key(s) for s in specs], "channels")
    return specs


def mapping(value: Any, what: str, keys: set[str] | dict[str, Any]) -> dict[str, Any]:
    """An optional mapping whose keys are among ``keys`` (``{}`` when absent)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a mapping with keys {choices(sorted(keys))}, got {value!r}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ConfigError(f"unknown {what} key(s) {choices(unknown)}; valid keys: {choices(sorted(keys))}")
    return dict(value)


def positive_int(raw: dict[str, Any], key: str, default: int, minimum: int = 1, maximum: int = 10**9) -> int:
    """``raw[key]`` (default ``default``): an integer in ``[minimum, maximum]``."""
    value = raw.get(key, default)
    expect(value, int, key)
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key} must be an integer in [{minimum}, {maximum}], got {value}")
    return value


# --- SNR ----------------------------------------------------------------------------------------

def parse_snr(value: Any, what: str = "snr_db") -> float:
    """One SNR (Es/N0, dB): a finite number within :data:`~semsim.channels.SNR_RANGE_DB`, as a float."""
    snr = finite(value, what)
    lo, hi = SNR_RANGE_DB
    if not lo <= snr <= hi:
        raise ConfigError(f"{what}: SNR {value:g} dB is outside the valid range [{lo:g}, {hi:g}] dB")
    return snr


def parse_snr_list(value: Any, what: str = "snr_db") -> list[float]:
    """A sweep's SNRs: a list of dB values or ``{start, stop, step}`` (``stop`` included), each
    checked by :func:`parse_snr`, at most :data:`MAX_SNR_POINTS`, none repeated."""
    if value is None:
        raise ConfigError(f"missing required key {what!r} (a list of dB values or {{start, stop, step}})")
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"start", "stop", "step"})
        if unknown or not {"start", "stop"} <= set(value):
            raise ConfigError(f"{what} range must have keys 'start', 'stop' and optional 'step', got {value!r}")
        start, stop = parse_snr(value["start"], f"{what}.start"), parse_snr(value["stop"], f"{what}.stop")
        step = finite(value.get("step", 1), f"{what}.step")
        if step <= 0 or stop < start:
            raise ConfigError(f"{what} range needs step > 0 and stop >= start, got {value!r}")
        if (stop - start) / step >= MAX_SNR_POINTS:
            raise ConfigError(f"{what} range {value!r} has more than {MAX_SNR_POINTS} values; raise the step")
        n = int(round((stop - start) / step)) + 1
        vals = [round(start + i * step, 6) for i in range(n) if start + i * step <= stop + 1e-9]
    else:
        vals = as_list(value, what)
        if len(vals) > MAX_SNR_POINTS:
            raise ConfigError(f"{what} has {len(vals)} values; at most {MAX_SNR_POINTS} are allowed")
        vals = [parse_snr(v, f"each {what} value") for v in vals]
    refuse_repeats([f"{v:g} dB" for v in vals], what)
    return [float(v) for v in vals]


# --- budgets ------------------------------------------------------------------------------------

def parse_budget(value: Any, what: str = "budget", number_is_cbr: bool = False) -> Budget:
    """A channel-use cap: a :class:`~semsim.codec.Budget`, ``{cbr: VALUE}`` (a number or a fraction
    like ``"1/16"``) or ``{channel_uses: N}`` (an integer in ``[1, MAX_CHANNEL_USES]``); with
    ``number_is_cbr`` also a bare number or fraction, taken as CBR (``semsim transmit --budget``)."""
    if isinstance(value, Budget):
        return value
    if number_is_cbr and not isinstance(value, Mapping):
        return Budget("cbr", finite_ratio(value, f"{what} cbr"))
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in Budget.KINDS:
        raise ConfigError(f"each {what} must be {{cbr: VALUE}} or {{channel_uses: N}}, got {value!r}; "
                          f"valid choices: {choices(Budget.KINDS)}")
    (kind, val), = value.items()
    if kind == "channel_uses":
        expect(val, int, f"{what} channel_uses")
        if not 1 <= val <= MAX_CHANNEL_USES:
            raise ConfigError(f"{what} channel_uses must be an integer in [1, {MAX_CHANNEL_USES}], got {val}")
        return Budget(kind, float(val))
    return Budget(kind, finite_ratio(val, f"{what} cbr"))


def parse_budgets(value: Any) -> list[Budget]:
    """A scenario's ``budget``: one :func:`parse_budget` mapping or a list of them, none repeated."""
    out = [parse_budget(b) for b in as_list(value, "budget")]
    refuse_repeats([b.key for b in out], "budget")
    return out


def check_budget_fits(codec, budget: Budget, height: int, width: int, image: str, method: str,
                      remedy: str) -> None:
    """:class:`ConfigError` unless ``budget`` allows at least one channel use, and at least what
    ``codec`` needs, for a ``height x width`` image.

    :param image: the image in words (``"a 64x96 image of kodak"``); ``method``: the method's name.
    :param remedy: what to do about it (``"raise the budget or drop the method"``).
    """
    need, cap = codec.min_channel_uses(height, width), budget.channel_uses(height, width)
    if cap < 1 or need > cap:
        raise ConfigError(f"budget {budget.key} (cap {cap} channel uses for {image}) is below what method "
                          f"{method} needs ({max(need, 1)}); {remedy}")
