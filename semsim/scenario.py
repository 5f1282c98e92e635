"""Scenario files: schema, validation and the sweep's points.

A scenario is a YAML mapping. Two kinds exist.

``kind: transmission`` (default) sweeps dataset × budget × channel × SNR × (MCS) × method::

    name: quickstart
    seed: 0
    data: {name: builtin, limit: 3}          # one dataset spec, or a list of them
    budget: {cbr: 1/16}                       # or {channel_uses: 10000}, or a list of them
    channels: [awgn, {name: rayleigh, block_length: 1024}]
    snr_db: [0, 10, 20]                       # or {start: 0, stop: 20, step: 2}
    methods:
      - {name: jpeg+ldpc, mcs: [qpsk-1/2, 16qam-1/2]}
      - jpeg+capacity
    batch_size: 4                             # images per batch (same-size images only)
    output: results/quickstart                # default results/<name>

``kind: ber`` simulates coded and uncoded QAM::

    kind: ber
    channels: [awgn, rayleigh]
    snr_db: {start: 0, stop: 12, step: 1}
    modulations: [qpsk, 16qam, 64qam]
    code_rates: [uncoded, 1/2]                # LDPC 5G code rates, or "uncoded"
    min_errors: 1000                          # stop a point after this many bit errors …
    max_bits: 2.0e+7                          # … or this many bits

Every problem raises :class:`~semsim.errors.ConfigError` (or :class:`~semsim.errors.DataError` for a
missing data folder) with a message naming the valid choices; nothing is written before a scenario
has validated.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import registry
from .channels import SNR_RANGE_DB
from .codec import Budget, parse_ratio
from .config import derive_seed
from .errors import ConfigError, choices

KINDS = ("transmission", "ber")
COMMON_KEYS = {"name", "kind", "seed", "description", "output", "device", "channels", "snr_db"}
TRANSMISSION_KEYS = COMMON_KEYS | {"data", "budget", "methods", "batch_size"}
BER_KEYS = COMMON_KEYS | {"modulations", "code_rates", "min_errors", "max_bits", "codeword_length",
                          "num_bp_iter"}


@dataclass(frozen=True)
class Point:
    """One point of a sweep. ``key`` names it in words; ``id`` is a short stable hash of the key."""

    index: int
    key: str
    seed: int
    data: int = 0          # index into Scenario.data
    budget: Budget | None = None
    channel: int = 0       # index into Scenario.channels
    snr_db: float = 0.0
    method: int = 0        # index into Scenario.methods
    axes: tuple[tuple[str, Any], ...] = ()

    @property
    def id(self) -> str:
        return hashlib.sha1(self.key.encode()).hexdigest()[:12]


@dataclass
class Scenario:
    """A validated scenario. ``raw`` keeps the parsed YAML mapping; ``hash`` identifies its content."""

    name: str
    kind: str
    seed: int
    raw: dict[str, Any]
    path: Path | None = None
    channels: list[dict[str, Any]] = field(default_factory=list)
    snr_db: list[float] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)
    methods: list[dict[str, Any]] = field(default_factory=list)
    batch_size: int = 4
    output: Path | None = None
    device: str = "cpu"
    # kind: ber
    modulations: list[str] = field(default_factory=list)
    code_rates: list[str] = field(default_factory=list)
    min_errors: int = 1000
    max_bits: int = 10_000_000
    codeword_length: int = 1944
    num_bp_iter: int = 20

    @property
    def hash(self) -> str:
        """sha256 of the scenario's content (key order and formatting do not matter)."""
        text = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def points(self) -> list[Point]:
        """The sweep in canonical order; every point carries its own seed."""
        if self.kind == "ber":
            return self._ber_points()
        pts = []
        for d, data in enumerate(self.data):
            for budget in self.budgets:
                for c, ch in enumerate(self.channels):
                    for snr in self.snr_db:
                        for m, method in enumerate(self.methods):
                            for axes in _axes_product(method):
                                key = "|".join([spec_label(data), budget.label, spec_label(ch), f"snr={snr:g}",
                                                spec_label(method, skip=("mcs",))]
                                               + [f"{k}={v}" for k, v in axes])
                                pts.append(Point(len(pts), key, derive_seed(self.seed, key), d, budget, c,
                                                 snr, m, axes))
        return pts

    def _ber_points(self) -> list[Point]:
        pts = []
        for c, ch in enumerate(self.channels):
            for mod in self.modulations:
                for rate in self.code_rates:
                    for snr in self.snr_db:
                        key = f"{spec_label(ch)}|{mod}|{rate}|snr={snr:g}"
                        pts.append(Point(len(pts), key, derive_seed(self.seed, key), channel=c, snr_db=snr,
                                         axes=(("modulation", mod), ("code_rate", rate))))
        return pts


def spec_label(spec: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    """``{"name": "rayleigh", "block_length": 8}`` → ``"rayleigh(block_length=8)"``."""
    opts = {k: v for k, v in spec.items() if k != "name" and k not in skip}
    if not opts:
        return str(spec["name"])
    return f"{spec['name']}(" + ",".join(f"{k}={opts[k]}" for k in sorted(opts)) + ")"


def _axes_product(method: dict[str, Any]) -> list[tuple[tuple[str, Any], ...]]:
    mcs = method.get("mcs")
    if mcs is None:
        return [()]
    return [(("mcs", m),) for m in mcs]


# --- loading ------------------------------------------------------------------------------------

def load_scenario(source: str | Path | dict[str, Any]) -> Scenario:
    """Parse and validate a scenario from a YAML file path or an already-parsed mapping.

    Builds (and so checks) every channel and method spec and opens every dataset; raises
    :class:`ConfigError` / :class:`DataError` with a clear message on the first problem.
    """
    path = None
    if isinstance(source, dict):
        raw = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"scenario file {str(path)!r} not found")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            what = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"scenario {str(path)!r} is not valid YAML{where}: {what}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"a scenario must be a YAML mapping of keys to values, got {type(raw).__name__}")
    raw = dict(raw)
    kind = raw.get("kind", "transmission")
    if kind not in KINDS:
        raise ConfigError(f"unknown scenario kind {kind!r}; valid choices: {choices(KINDS)}")
    allowed = TRANSMISSION_KEYS if kind == "transmission" else BER_KEYS
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"unknown scenario key(s) {choices(unknown)} for kind {kind!r}; "
                          f"valid keys: {choices(sorted(allowed))}")
    name = raw.get("name", path.stem if path else "scenario")
    _expect(name, str, "name")
    seed = raw.get("seed", 0)
    _expect(seed, int, "seed")
    device = raw.get("device", "cpu")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ConfigError(f"device must be one of 'cpu', 'cuda', 'cuda:N', got {device!r}")
    sc = Scenario(name=name, kind=kind, seed=seed, raw=raw, path=path, device=device)
    output = raw.get("output", f"results/{name}")
    _expect(output, str, "output")
    sc.output = Path(output)
    sc.channels = _channels(raw)
    sc.snr_db = _snr_list(raw.get("snr_db"))
    if kind == "ber":
        _ber_fields(sc, raw)
    else:
        _transmission_fields(sc, raw)
    return sc


def _expect(value: Any, types: type | tuple[type, ...], what: str) -> None:
    if isinstance(value, bool) and types is not bool or not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{what} must be of type {names}, got {value!r} ({type(value).__name__})")


def _as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        raise ConfigError(f"missing required key {what!r}")
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ConfigError(f"{what!r} must not be empty")
    return items


def _spec(item: Any, kind: str, what: str) -> dict[str, Any]:
    """Normalise a spec to ``{"name": ..., **options}`` and check the name and option names."""
    if not isinstance(item, (str, dict)):
        raise ConfigError(f"each entry of {what!r} must be a name or a mapping with 'name', got {item!r}")
    name, kwargs = registry.split_spec(item)
    _expect(name, str, f"{what} name")
    registry.lookup(kind, name)
    return {"name": name, **kwargs}


def _channels(raw: dict[str, Any]) -> list[dict[str, Any]]:
    specs = [_spec(c, "channel", "channels") for c in _as_list(raw.get("channels"), "channels")]
    for s in specs:
        registry.build("channel", s)  # checks options and their values
    return specs


def _snr_list(value: Any) -> list[float]:
    if value is None:
        raise ConfigError("missing required key 'snr_db' (a list of dB values or {start, stop, step})")
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"start", "stop", "step"})
        if unknown or not {"start", "stop"} <= set(value):
            raise ConfigError(f"snr_db range must have keys 'start', 'stop' and optional 'step', got {value!r}")
        start, stop, step = value["start"], value["stop"], value.get("step", 1)
        for v, w in ((start, "start"), (stop, "stop"), (step, "step")):
            _expect(v, (int, float), f"snr_db.{w}")
        if step <= 0 or stop < start:
            raise ConfigError(f"snr_db range needs step > 0 and stop >= start, got {value!r}")
        n = int(round((stop - start) / step)) + 1
        vals = [round(start + i * step, 6) for i in range(n) if start + i * step <= stop + 1e-9]
    else:
        vals = _as_list(value, "snr_db")
        for v in vals:
            _expect(v, (int, float), "each snr_db value")
    lo, hi = SNR_RANGE_DB
    bad = [v for v in vals if not lo <= v <= hi]
    if bad:
        raise ConfigError(f"SNR value(s) {bad} dB outside the valid range [{lo:g}, {hi:g}] dB")
    return [float(v) for v in vals]


def _budgets(value: Any) -> list[Budget]:
    out = []
    for b in _as_list(value, "budget"):
        if not isinstance(b, dict) or len(b) != 1 or next(iter(b)) not in Budget.KINDS:
            raise ConfigError(f"each budget must be {{cbr: VALUE}} or {{channel_uses: N}}, got {b!r}; "
                              f"valid choices: {choices(Budget.KINDS)}")
        (kind, val), = b.items()
        if kind == "channel_uses":
            _expect(val, int, "budget channel_uses")
            out.append(Budget(kind, float(val)))
        else:
            out.append(Budget(kind, parse_ratio(val, "budget cbr")))
    return out


def _transmission_fields(sc: Scenario, raw: dict[str, Any]) -> None:
    sc.batch_size = raw.get("batch_size", 4)
    _expect(sc.batch_size, int, "batch_size")
    if sc.batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {sc.batch_size}")
    sc.budgets = _budgets(raw.get("budget"))
    sc.data = [_spec(d, "dataset", "data") for d in _as_list(raw.get("data"), "data")]
    datasets = [registry.build("dataset", d) for d in sc.data]  # DataError for a missing folder
    sc.methods = []
    for m in _as_list(raw.get("methods"), "methods"):
        spec = _spec(m, "codec", "methods")
        registry.check_kwargs("codec", spec["name"], {k: v for k, v in spec.items() if k != "name"})
        sc.methods.append(spec)
    _check_budgets(sc, datasets)


def _check_budgets(sc: Scenario, datasets: list) -> None:
    """Build each method at each budget, fix its sweep axes, and check it can meet the budget."""
    from .data import image_sizes

    for d, ds in zip(sc.data, datasets):
        sizes = image_sizes(ds)
        for budget in sc.budgets:
            for spec in sc.methods:
                codec = registry.build("codec", spec, budget=budget)
                if codec.task.value == "segmentation" and getattr(ds, "num_classes", None) is None:
                    raise ConfigError(f"method {spec['name']!r} does segmentation but dataset "
                                      f"{spec_label(d)} has no labels; use camvid, voc or procedural")
                if codec.axes:
                    spec.update(codec.sweep_values())
                for h, w in sizes:
                    need, cap = codec.min_channel_uses(h, w), budget.channel_uses(h, w)
                    if need > cap:
                        raise ConfigError(
                            f"budget {budget.label} (cap {cap} channel uses for a {h}x{w} image of "
                            f"{spec_label(d)}) is below what method {spec['name']!r} needs ({need}); "
                            f"raise the budget or drop the method")


def _ber_fields(sc: Scenario, raw: dict[str, Any]) -> None:
    from .digital import MODULATIONS

    sc.modulations = [str(m).lower() for m in _as_list(raw.get("modulations"), "modulations")]
    bad = [m for m in sc.modulations if m not in MODULATIONS]
    if bad:
        raise ConfigError(f"unknown modulation(s) {bad}; valid choices: {choices(MODULATIONS)}")
    rates = _as_list(raw.get("code_rates", ["uncoded"]), "code_rates")
    sc.code_rates = []
    for r in rates:
        if r == "uncoded":
            sc.code_rates.append("uncoded")
            continue
        val = parse_ratio(r, "code rate")
        if not 0 < val < 1:
            raise ConfigError(f"code rate must be in (0, 1) or 'uncoded', got {r!r}")
        sc.code_rates.append(str(r))
    for key in ("min_errors", "codeword_length", "num_bp_iter"):
        if key in raw:
            _expect(raw[key], int, key)
            setattr(sc, key, raw[key])
    if "max_bits" in raw:
        _expect(raw["max_bits"], (int, float), "max_bits")
        sc.max_bits = int(raw["max_bits"])
