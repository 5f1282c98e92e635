"""Scenario files: schema, validation and the sweep's points.

A scenario is a YAML mapping. Three kinds exist.

``kind: transmission`` (default) sweeps dataset × budget × channel × SNR × (MCS) × method::

    name: quickstart
    seed: 0
    data: {name: builtin, limit: 3}          # one dataset spec, or a list of them, or by task:
                                              # {reconstruction: ..., segmentation: ...}
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

``kind: train`` trains learned codecs (``semsim train``; every key but ``methods``, ``budget`` and
``channel`` is optional, the values shown are the defaults)::

    kind: train
    name: semantic-small-awgn
    seed: 0
    device: cpu                               # or cuda
    output: ~/.cache/semsim/train/semantic-small-awgn   # default $SEMSIM_CACHE_DIR/train/<name>
    methods: [{name: semantic, preset: small}]  # trainable codecs, trained in turn on the same draws
    init: scratch                             # or shipped (continue the package's weights), {weights: DIR}
    budget: {cbr: 1/16}                       # exactly one
    channel: awgn                             # exactly one channel spec
    snr_db: {low: 0, high: 20}                # drawn uniformly per image per step (or one number)
    steps: 2000
    batch_size: 8                             # images per task per step (split over DDP ranks)
    crop: 128                                 # random square crops, reflect-padded if smaller
    data:                                     # default: what exists of the lists below
      reconstruction: [{name: bsds500, split: train}, {name: bsds500, split: val},
                       {name: camvid, split: train}, {name: voc, split: train}]  # else builtin
      segmentation: {name: camvid, split: train}                # else voc train, else procedural
    validation:                               # data: one spec, or one per task (defaults shown)
      every: 200
      data: {reconstruction: {name: bsds500, split: test, limit: 8},
             segmentation: {name: camvid, split: val, limit: 8}}
      snr_db: [0, 10, 20]
    optimizer: {lr: 1.0e-4, betas: [0.5, 0.999], weight_decay: 0.01, warmup_steps: 100,
                clip_grad_norm: 1.0,          # AdamW; clip_grad_norm null disables clipping
                schedule: constant, final_lr: 1.0}   # or cosine down to final_lr x lr
    symbols: {at_budget: 0.5, low: 0.25, high: 1.0}  # symbols per batch (semsim.codec.SymbolPolicy)
    per_method:                               # by method name: optimizer keys, loss weights per task,
      semantic: {loss_weights: {segmentation: 1.0}, last_step_prob: 0.25}   # the codec's own options
    precision: fp32                           # or bf16 (autocast, on the CPU as on CUDA)
    checkpoint_every: 200
    log_every: 1                              # steps between rows of curve.csv

Kodak is never training (or validation) data: it is the evaluation set. Segmentation datasets must
carry labels and agree on ``num_classes`` and ``ignore_index``; both are passed to codecs whose
constructors take them.

Every problem raises :class:`~semsim.errors.ConfigError` (or :class:`~semsim.errors.DataError` for a
missing data folder) with a message naming the valid choices; nothing is written before a scenario
has validated. Scenario files are bounded, unambiguous data (:func:`read_yaml`): UTF-8, at most
:data:`MAX_SCENARIO_BYTES`, at most :data:`MAX_VALUES` values once aliases are expanded, no
duplicate or non-string keys, only plain values; every number is finite and in range, and a
repeated SNR, method, MCS, channel, budget or dataset is refused.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import registry
from .channels import SNR_RANGE_DB
from .codec import Budget, Task, parse_ratio
from .config import derive_seed
from .errors import ConfigError, choices

KINDS = ("transmission", "ber", "train")
COMMON_KEYS = {"name", "kind", "seed", "description", "output", "device", "channels", "snr_db"}
TRANSMISSION_KEYS = COMMON_KEYS | {"data", "budget", "methods", "batch_size"}
BER_KEYS = COMMON_KEYS | {"modulations", "code_rates", "min_errors", "max_bits", "codeword_length",
                          "num_bp_iter"}
TRAIN_KEYS = {"name", "kind", "seed", "description", "output", "device", "methods", "budget", "channel",
              "snr_db", "steps", "batch_size", "crop", "data", "validation", "optimizer", "precision",
              "checkpoint_every", "log_every", "init", "symbols", "per_method"}
#: AdamW settings of the paper, plus a linear warm-up and gradient-norm clipping (a small conv JSCC
#: at lr 1e-3 showed loss spikes and collapsed without them)
OPTIMIZER_DEFAULTS = {"lr": 1.0e-4, "betas": [0.5, 0.999], "weight_decay": 0.01, "warmup_steps": 100,
                      "clip_grad_norm": 1.0, "schedule": "constant", "final_lr": 1.0}
#: learning-rate schedules after the linear warm-up (``final_lr``: the last step's lr as a fraction of ``lr``)
SCHEDULES = ("constant", "cosine")
#: where training starts: random weights, or the package's shipped weights ``<method>-<preset>``
INIT_CHOICES = ("scratch", "shipped")

PRECISIONS = ("fp32", "bf16")
#: default training data, in order; the entries whose folders exist are used
DEFAULT_RECONSTRUCTION_DATA = ({"name": "bsds500", "split": "train"}, {"name": "bsds500", "split": "val"},
                               {"name": "camvid", "split": "train"}, {"name": "voc", "split": "train"})
#: default segmentation data: the first that exists
DEFAULT_SEGMENTATION_DATA = ({"name": "camvid", "split": "train"}, {"name": "voc", "split": "train"},
                             {"name": "procedural", "num": 64, "seed": 0})
#: default validation data per task: the first that exists (BSDS500 test for reconstruction: its
#: train and val splits are training data, Kodak is evaluation only; procedural with another seed)
DEFAULT_VALIDATION_DATA = {
    "reconstruction": ({"name": "bsds500", "split": "test", "limit": 8}, {"name": "builtin"}),
    "segmentation": ({"name": "camvid", "split": "val", "limit": 8}, {"name": "voc", "split": "val", "limit": 8},
                     {"name": "procedural", "num": 8, "seed": 1}),
}


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
class TrainSettings:
    """The ``kind: train`` part of a scenario (see the module docstring for the YAML form).

    ``data`` maps a task value (``"reconstruction"``, ``"segmentation"``) to dataset specs;
    ``num_classes`` / ``ignore_index`` are those of the segmentation data (``None`` without it);
    ``names`` are the methods' filesystem-safe, unique output folder names.
    """

    snr_db: tuple[float, float] = (0.0, 20.0)
    steps: int = 2000
    crop: int = 128
    data: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    num_classes: int | None = None
    ignore_index: int | None = None
    validation_every: int = 200
    #: task value → the dataset spec its validation scores
    validation_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    validation_snr_db: list[float] = field(default_factory=lambda: [0.0, 10.0, 20.0])
    optimizer: dict[str, Any] = field(default_factory=lambda: dict(OPTIMIZER_DEFAULTS))
    precision: str = "fp32"
    checkpoint_every: int = 200
    log_every: int = 1
    names: list[str] = field(default_factory=list)
    #: ``"scratch"``, ``"shipped"`` or ``{"weights": DIR}`` (a folder of shipped weights with its manifest)
    init: Any = "scratch"
    #: the training symbol-count policy (:class:`~semsim.codec.SymbolPolicy` fields)
    symbols: dict[str, float] = field(default_factory=dict)
    #: registry name → {"optimizer": {...}, "loss_weights": {...}, codec training options ...}
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)

    def method_settings(self, name: str) -> dict[str, Any]:
        """Method ``name``'s recipe: its optimizer (the scenario's, updated by ``per_method``), its
        per-task loss weights (default 1) and its codec training options."""
        own = dict(self.per_method.get(name, {}))
        opt = dict(self.optimizer, **own.pop("optimizer", {}))
        return {"optimizer": opt, "loss_weights": own.pop("loss_weights", {}), "options": own}


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
    #: per entry of ``data``: the task whose methods it feeds (``None``: every method's)
    data_tasks: list[str | None] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)
    methods: list[dict[str, Any]] = field(default_factory=list)
    #: per method: its task value (filled in when the scenario is validated)
    method_tasks: list[str] = field(default_factory=list)
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
    # kind: train
    train: TrainSettings | None = None

    @property
    def hash(self) -> str:
        """sha256 of the scenario's content (key order and formatting do not matter)."""
        text = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def points(self) -> list[Point]:
        """The sweep in canonical order; every point carries its own seed (``kind: train``: one
        point per method, whose seed fixes that method's initial weights)."""
        if self.kind == "ber":
            return self._ber_points()
        if self.kind == "train":
            return [Point(m, f"train|{spec_label(spec)}", derive_seed(self.seed, "train", spec_label(spec)), method=m)
                    for m, spec in enumerate(self.methods)]
        pts = []
        for d, data in enumerate(self.data):
            for budget in self.budgets:
                for c, ch in enumerate(self.channels):
                    for snr in self.snr_db:
                        for m, method in enumerate(self.methods):
                            if not self.pairs(d, m):
                                continue
                            for axes in _axes_product(method):
                                key = "|".join([spec_label(data), budget.label, spec_label(ch), f"snr={snr:g}",
                                                spec_label(method, skip=("mcs",))]
                                               + [f"{k}={v}" for k, v in axes])
                                pts.append(Point(len(pts), key, derive_seed(self.seed, key), d, budget, c,
                                                 snr, m, axes))
        return pts

    def pairs(self, d: int, m: int) -> bool:
        """Whether method ``m`` runs on dataset ``d`` (task-keyed data feeds only its task's methods)."""
        task = self.data_tasks[d] if d < len(self.data_tasks) else None
        return task is None or m >= len(self.method_tasks) or self.method_tasks[m] == task

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


# --- reading YAML -------------------------------------------------------------------------------

#: a scenario file above this size is refused (the shipped ones are under 4 KiB)
MAX_SCENARIO_BYTES = 1 << 20
#: values (scalars, lists, mappings) a scenario may hold once YAML aliases are expanded; a few
#: hundred bytes of nested aliases would otherwise expand to millions
MAX_VALUES = 10_000
#: characters in one string (``description`` included)
MAX_TEXT_CHARS = 10_000
#: nesting depth of lists and mappings
MAX_DEPTH = 32
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
_PLAIN = (str, int, float, bool, type(None), list, tuple, dict, os.PathLike)


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses duplicate and non-string keys (naming the line) and
    documents whose aliases expand beyond :data:`MAX_VALUES` values (or refer to themselves)."""

    def compose_document(self):
        node = super().compose_document()
        _check_expansion(node)
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
                if not isinstance(key, str):
                    raise ConfigError(f"key {key!r} at line {line} must be a string")
                if key in seen:
                    raise ConfigError(f"duplicate key {key!r} at line {line} (first at line {seen[key]}); "
                                      f"each key may appear once")
                seen[key] = line
        return super().construct_mapping(node, deep)


def _check_expansion(root: yaml.Node) -> None:
    """Count the values ``root`` stands for with aliases expanded, without expanding them."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    aliased = False
    while stack:
        node, depth = stack[-1]
        if depth > MAX_DEPTH:
            raise ConfigError(f"lists and mappings nest deeper than {MAX_DEPTH} levels "
                              f"(line {node.start_mark.line + 1})")
        children = (node.value if isinstance(node, yaml.SequenceNode) else
                    [n for kv in node.value for n in kv] if isinstance(node, yaml.MappingNode) else [])
        if id(node) not in open_:
            open_.add(id(node))
            todo = [c for c in children if id(c) not in size]
            if any(id(c) in open_ for c in todo):
                raise ConfigError(f"an alias at line {node.start_mark.line + 1} refers to the value that holds it")
            aliased = aliased or len(todo) < len(children)
            stack.extend((c, depth + 1) for c in todo)
            continue
        stack.pop()
        if id(node) in size:
            continue
        n = size[id(node)] = 1 + sum(size[id(c)] for c in children)
        aliased = aliased or len({id(c) for c in children}) < len(children)
        if n > MAX_VALUES:
            why = " once its aliases are expanded" if aliased else ""
            raise ConfigError(f"the document holds more than {MAX_VALUES} values{why}; a scenario is small")


def parse_yaml(text: str, what: str) -> Any:
    """Parse YAML ``text`` with the strict loader; :class:`ConfigError` (one line, naming ``what``
    and the line) on any problem."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except ConfigError as e:
        raise ConfigError(f"{what}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{what} is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{what}: lists and mappings nest too deeply") from None


def read_yaml(path: Path, what: str = "scenario") -> Any:
    """Read a YAML file: a file (not a folder) of at most :data:`MAX_SCENARIO_BYTES`, UTF-8 text,
    parsed by :func:`parse_yaml`."""
    label = f"{what} {str(path)!r}"
    if path.is_dir():
        raise ConfigError(f"{label} is a folder, not a {what} file")
    if not path.is_file():
        raise ConfigError(f"{what} file {str(path)!r} not found")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SCENARIO_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read {label}: {e.strerror or e}") from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise ConfigError(f"{label} is larger than {MAX_SCENARIO_BYTES // 1024} KiB; a {what} file is small")
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise ConfigError(f"{label} is UTF-32 text; save it as UTF-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{label} is UTF-16 text; save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(f"{label} is not UTF-8 text (byte 0x{data[e.start]:02x} at line {line}); "
                          f"save it as UTF-8") from None
    return parse_yaml(text, label)


def _check_plain(value: Any, where: str) -> None:
    """Every value is plain data (strings, numbers, booleans, null, lists, mappings with string
    keys), strings are at most :data:`MAX_TEXT_CHARS` long, and there are at most
    :data:`MAX_VALUES` values in all."""
    stack, count = [(value, where)], 0
    while stack:
        v, at = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(f"{where} holds more than {MAX_VALUES} values; a scenario is small")
        if not isinstance(v, _PLAIN):
            raise ConfigError(f"{at} must be a string, number, boolean, list or mapping, got {type(v).__name__} "
                              f"{str(v)[:60]!r}")
        if isinstance(v, str) and len(v) > MAX_TEXT_CHARS:
            raise ConfigError(f"{at} is {len(v)} characters long; at most {MAX_TEXT_CHARS} are allowed")
        if isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str):
                    raise ConfigError(f"{at}: key {k!r} must be a string")
                stack.append((item, f"{at}.{k}" if at != "scenario" else k))
        elif isinstance(v, (list, tuple)):
            stack.extend((item, f"{at}[{i}]") for i, item in enumerate(v))


# --- loading ------------------------------------------------------------------------------------

def load_scenario(source: str | Path | dict[str, Any], *, check_classes: bool = True) -> Scenario:
    """Parse and validate a scenario from a YAML file path or an already-parsed mapping.

    Builds (and so checks) every channel and method spec and opens every dataset; raises
    :class:`ConfigError` / :class:`DataError` with a clear message on the first problem.
    ``check_classes=False`` lets a segmentation method predict another class count than its
    dataset's (``semsim grid`` draws such a prediction unscored; ``semsim run`` never allows it).
    """
    path = None
    if isinstance(source, dict):
        raw = source
    else:
        path = Path(source)
        raw = read_yaml(path, "scenario")
    if not isinstance(raw, dict):
        raise ConfigError(f"a scenario must be a YAML mapping of keys to values, got {type(raw).__name__}")
    raw = dict(raw)
    _check_plain(raw, "scenario")
    kind = raw.get("kind", "transmission")
    if kind not in KINDS:
        raise ConfigError(f"unknown scenario kind {kind!r}; valid choices: {choices(KINDS)}")
    allowed = {"transmission": TRANSMISSION_KEYS, "ber": BER_KEYS, "train": TRAIN_KEYS}[kind]
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"unknown scenario key(s) {choices(unknown)} for kind {kind!r}; "
                          f"valid keys: {choices(sorted(allowed))}")
    name = raw.get("name", path.stem if path else "scenario")
    _text(name, "name", MAX_NAME_CHARS)
    if "description" in raw and raw["description"] is not None:
        _expect(raw["description"], str, "description")
    seed = raw.get("seed", 0)
    _expect(seed, int, "seed")
    if not -2**63 <= seed < 2**63:
        raise ConfigError(f"seed must be an integer in [-2**63, 2**63), got {seed}")
    device = raw.get("device", "cpu")
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:[0-9]{1,3})?", device):
        raise ConfigError(f"device must be one of 'cpu', 'cuda', 'cuda:N', got {device!r}")
    sc = Scenario(name=name, kind=kind, seed=seed, raw=raw, path=path, device=device)
    output = raw.get("output", str(train_cache() / name) if kind == "train" else f"results/{name}")
    _text(output, "output", MAX_PATH_CHARS)
    sc.output = Path(output).expanduser()
    if kind == "train":
        _train_fields(sc, raw)
        return sc
    sc.channels = _channels(raw)
    sc.snr_db = _snr_list(raw.get("snr_db"))
    if kind == "ber":
        _ber_fields(sc, raw)
    else:
        _transmission_fields(sc, raw, check_classes)
    counts = Counter(p.key for p in sc.points())
    if len(counts) < sum(counts.values()):
        dup = next(k for k, n in counts.items() if n > 1)
        raise ConfigError(f"point {dup!r} appears twice (a repeated MCS, method or value); each may appear once")
    return sc


def train_cache() -> Path:
    """Where ``semsim train`` keeps its checkpoints by default: ``$SEMSIM_CACHE_DIR/train`` (default
    ``~/.cache/semsim/train``), outside the repository, so a later run on the machine continues."""
    from .files import cache_dir

    return cache_dir() / "train"


def _expect(value: Any, types: type | tuple[type, ...], what: str) -> None:
    if isinstance(value, bool) and types is not bool or not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{what} must be of type {names}, got {value!r} ({type(value).__name__})")


def _text(value: Any, what: str, limit: int) -> None:
    """A non-empty string of at most ``limit`` printable characters (a name or a path)."""
    _expect(value, str, what)
    if not value.strip() or len(value) > limit or not value.isprintable():
        raise ConfigError(f"{what} must be non-empty printable text of at most {limit} characters, "
                          f"got {value[:80]!r}")


def _finite(value: Any, what: str) -> float:
    """A finite int or float (not a bool) as a float."""
    _expect(value, (int, float), what)
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ConfigError(f"{what} must be a finite number, got {value!r}")
    return out


def _refuse_repeats(labels: list[str], what: str) -> None:
    """A repeated entry would duplicate rows (and double n in the confidence intervals)."""
    seen = set()
    for label in labels:
        if label in seen:
            raise ConfigError(f"{what} lists {label} twice; each entry may appear once")
        seen.add(label)


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
    _refuse_repeats([spec_label(s) for s in specs], "channels")
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
            _finite(v, f"snr_db.{w}")
        if step <= 0 or stop < start:
            raise ConfigError(f"snr_db range needs step > 0 and stop >= start, got {value!r}")
        _check_snr([start, stop], "snr_db")
        if (stop - start) / step >= MAX_SNR_POINTS:
            raise ConfigError(f"snr_db range {value!r} has more than {MAX_SNR_POINTS} values; raise the step")
        n = int(round((stop - start) / step)) + 1
        vals = [round(start + i * step, 6) for i in range(n) if start + i * step <= stop + 1e-9]
    else:
        vals = _as_list(value, "snr_db")
        for v in vals:
            _finite(v, "each snr_db value")
        if len(vals) > MAX_SNR_POINTS:
            raise ConfigError(f"snr_db has {len(vals)} values; at most {MAX_SNR_POINTS} are allowed")
    lo, hi = SNR_RANGE_DB
    bad = [v for v in vals if not lo <= v <= hi]
    if bad:
        raise ConfigError(f"SNR value(s) {bad} dB outside the valid range [{lo:g}, {hi:g}] dB")
    _refuse_repeats([f"{v:g} dB" for v in vals], "snr_db")
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
            if not 1 <= val <= MAX_CHANNEL_USES:
                raise ConfigError(f"budget channel_uses must be an integer in [1, {MAX_CHANNEL_USES}], got {val}")
            out.append(Budget(kind, float(val)))
        else:
            out.append(Budget(kind, finite_ratio(val, "budget cbr")))
    _refuse_repeats([b.label for b in out], "budget")
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


def _transmission_fields(sc: Scenario, raw: dict[str, Any], check_classes: bool = True) -> None:
    sc.batch_size = _positive_int(raw, "batch_size", 4, maximum=MAX_BATCH)
    sc.budgets = _budgets(raw.get("budget"))
    data = raw.get("data")
    tasks = {t.value for t in Task}
    if isinstance(data, dict) and "name" not in data and data and set(data) <= tasks:
        by_task = [(task, d) for task, value in data.items() for d in _as_list(value, f"data.{task}")]
    elif isinstance(data, dict) and "name" not in data:
        raise ConfigError(f"data must be a dataset spec (with a name), a list of them, or a mapping by task "
                          f"with keys {choices(sorted(tasks))}; got keys {choices(sorted(map(str, data)))}")
    else:
        by_task = [(None, d) for d in _as_list(data, "data")]
    sc.data = [_spec(d, "dataset", "data") for _, d in by_task]
    sc.data_tasks = [task for task, _ in by_task]
    _refuse_repeats([spec_label(d) + (f" under {t}" if t else "") for d, t in zip(sc.data, sc.data_tasks)], "data")
    datasets = [registry.build("dataset", d) for d in sc.data]  # DataError for a missing folder
    sc.methods = []
    for m in _as_list(raw.get("methods"), "methods"):
        spec = _spec(m, "codec", "methods")
        registry.check_kwargs("codec", spec["name"], {k: v for k, v in spec.items() if k != "name"})
        sc.methods.append(spec)
    _refuse_repeats([spec_label(m) for m in sc.methods], "methods")
    _check_budgets(sc, datasets, check_classes)


def _check_budgets(sc: Scenario, datasets: list, check_classes: bool = True) -> None:
    """Build each method at each budget, fix its sweep axes, and check it can meet the budget."""
    from .data import image_sizes

    codecs: dict[tuple[int, int], Any] = {}

    def codec_at(b: int, m: int):
        if (b, m) not in codecs:
            codecs[b, m] = registry.build("codec", sc.methods[m], budget=sc.budgets[b])
        return codecs[b, m]

    sc.method_tasks = [codec_at(0, m).task.value for m in range(len(sc.methods))]
    for m, spec in enumerate(sc.methods):
        if not any(sc.pairs(d, m) for d in range(len(sc.data))):
            raise ConfigError(f"method {spec_label(spec)!r} does {sc.method_tasks[m]} but the scenario's data has "
                              f"no {sc.method_tasks[m]} entry; add one under data")
    for d, (dspec, ds) in enumerate(zip(sc.data, datasets)):
        sizes = image_sizes(ds)
        for b, budget in enumerate(sc.budgets):
            for m, spec in enumerate(sc.methods):
                if not sc.pairs(d, m):
                    continue
                codec = codec_at(b, m)
                if codec.task.value == "segmentation" and getattr(ds, "num_classes", None) is None:
                    raise ConfigError(f"method {spec['name']!r} does segmentation but dataset "
                                      f"{spec_label(dspec)} has no labels; use camvid, voc or procedural")
                classes = getattr(codec, "num_classes", None)
                if (check_classes and codec.task.value == "segmentation" and classes is not None
                        and classes != ds.num_classes):
                    raise ConfigError(f"method {spec['name']!r} predicts {classes} classes but dataset "
                                      f"{spec_label(dspec)} has {ds.num_classes}; use weights trained on "
                                      f"that dataset (or set num_classes: {ds.num_classes})")
                if codec.axes:
                    spec.update(codec.sweep_values())
                for h, w in sizes:
                    need, cap = codec.min_channel_uses(h, w), budget.channel_uses(h, w)
                    if need > cap:
                        raise ConfigError(
                            f"budget {budget.label} (cap {cap} channel uses for a {h}x{w} image of "
                            f"{spec_label(dspec)}) is below what method {spec['name']!r} needs ({need}); "
                            f"raise the budget or drop the method")


def _ber_fields(sc: Scenario, raw: dict[str, Any]) -> None:
    from .digital import MODULATIONS

    mods = _as_list(raw.get("modulations"), "modulations")
    for m in mods:
        _expect(m, str, "each modulation")
    sc.modulations = [m.lower() for m in mods]
    bad = [m for m in sc.modulations if m not in MODULATIONS]
    if bad:
        raise ConfigError(f"unknown modulation(s) {bad}; valid choices: {choices(MODULATIONS)}")
    rates = _as_list(raw.get("code_rates", ["uncoded"]), "code_rates")
    sc.code_rates = []
    for r in rates:
        if r == "uncoded":
            sc.code_rates.append("uncoded")
            continue
        val = finite_ratio(r, "code rate")
        if not 0 < val < 1:
            raise ConfigError(f"code rate must be in (0, 1) or 'uncoded', got {r!r}")
        sc.code_rates.append(str(r))
    for key, hi in (("min_errors", 10**9), ("codeword_length", 10**5), ("num_bp_iter", 1000)):
        if key in raw:
            _expect(raw[key], int, key)
            if not 1 <= raw[key] <= hi:
                raise ConfigError(f"{key} must be an integer in [1, {hi}], got {raw[key]}")
            setattr(sc, key, raw[key])
    if "max_bits" in raw:
        bits = _finite(raw["max_bits"], "max_bits")
        if not 1 <= bits <= MAX_BITS:
            raise ConfigError(f"max_bits must be a number in [1, {MAX_BITS:.0e}], got {raw['max_bits']!r}")
        sc.max_bits = int(bits)
    from .digital import MCS, check_link

    for mod in sc.modulations:  # codeword_length must suit every modulation and code rate
        for rate in sc.code_rates:
            check_link(MCS(mod, None if rate == "uncoded" else rate), sc.codeword_length)


# --- kind: train --------------------------------------------------------------------------------

def _mapping(value: Any, what: str, keys: set[str] | dict[str, Any]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a mapping with keys {choices(sorted(keys))}, got {value!r}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ConfigError(f"unknown {what} key(s) {choices(unknown)}; valid keys: {choices(sorted(keys))}")
    return dict(value)


def _positive_int(raw: dict[str, Any], key: str, default: int, minimum: int = 1, maximum: int = 10**9) -> int:
    value = raw.get(key, default)
    _expect(value, int, key)
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key} must be an integer in [{minimum}, {maximum}], got {value}")
    return value


def _check_snr(values: list[float], what: str) -> None:
    lo, hi = SNR_RANGE_DB
    bad = [v for v in values if not lo <= v <= hi]
    if bad:
        raise ConfigError(f"{what}: SNR value(s) {bad} dB outside the valid range [{lo:g}, {hi:g}] dB")


def _train_snr(value: Any) -> tuple[float, float]:
    if value is None:
        return 0.0, 20.0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low = high = float(value)
    else:
        if not isinstance(value, dict) or set(value) != {"low", "high"}:
            raise ConfigError(f"training snr_db must be {{low: DB, high: DB}} (drawn uniformly per image) "
                              f"or one number, got {value!r}")
        for k in ("low", "high"):
            _finite(value[k], f"snr_db.{k}")
        low, high = float(value["low"]), float(value["high"])
        if high < low:
            raise ConfigError(f"training snr_db needs low <= high, got {value!r}")
    _check_snr([low, high], "snr_db")
    return low, high


def _optimizer(value: Any) -> dict[str, Any]:
    opt = dict(OPTIMIZER_DEFAULTS, **_mapping(value, "optimizer", OPTIMIZER_DEFAULTS))
    _finite(opt["lr"], "optimizer.lr")
    _finite(opt["weight_decay"], "optimizer.weight_decay")
    _expect(opt["warmup_steps"], int, "optimizer.warmup_steps")
    betas = opt["betas"]
    if (not isinstance(betas, (list, tuple)) or len(betas) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
        raise ConfigError(f"optimizer.betas must be two numbers in [0, 1), got {betas!r}")
    if not opt["lr"] > 0 or opt["weight_decay"] < 0 or opt["warmup_steps"] < 0:
        raise ConfigError(f"optimizer needs lr > 0, weight_decay >= 0 and warmup_steps >= 0, got {opt!r}")
    if opt["clip_grad_norm"] is not None:
        _finite(opt["clip_grad_norm"], "optimizer.clip_grad_norm")
        if not opt["clip_grad_norm"] > 0:
            raise ConfigError(f"optimizer.clip_grad_norm must be positive or null (no clipping), "
                              f"got {opt['clip_grad_norm']!r}")
        opt["clip_grad_norm"] = float(opt["clip_grad_norm"])
    if opt["schedule"] not in SCHEDULES:
        raise ConfigError(f"unknown optimizer.schedule {opt['schedule']!r}; valid choices: {choices(SCHEDULES)}")
    _expect(opt["final_lr"], (int, float), "optimizer.final_lr")
    if not 0 <= opt["final_lr"] <= 1:
        raise ConfigError(f"optimizer.final_lr (a fraction of lr) must be in [0, 1], got {opt['final_lr']!r}")
    opt.update(lr=float(opt["lr"]), weight_decay=float(opt["weight_decay"]), betas=[float(b) for b in betas],
               final_lr=float(opt["final_lr"]))
    return opt


def _init(value: Any) -> Any:
    if value is None:
        return "scratch"
    if isinstance(value, dict) and set(value) == {"weights"} and isinstance(value["weights"], str):
        return dict(value)
    if value not in INIT_CHOICES:
        raise ConfigError(f"init must be one of {choices(INIT_CHOICES)} or {{weights: DIR}} (a folder of shipped "
                          f"weights with its manifest.json), got {value!r}")
    return value


def _symbols(value: Any) -> dict[str, float]:
    from .codec import SymbolPolicy

    fields = SymbolPolicy.__dataclass_fields__
    raw = _mapping(value, "symbols", set(fields))
    out = {}
    for k, v in raw.items():
        out[k] = parse_ratio(v, f"symbols.{k}")
    SymbolPolicy(**out)  # checks the ranges
    return out


def _per_method(value: Any, methods: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    from .codec import Task

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"per_method must map a method name to its settings, got {value!r}")
    names = sorted({m["name"] for m in methods})
    out = {}
    for name, own in value.items():
        if name not in names:
            raise ConfigError(f"per_method names {name!r}, which is not one of the scenario's methods "
                              f"({choices(names)})")
        if not isinstance(own, dict):
            raise ConfigError(f"per_method.{name} must be a mapping, got {own!r}")
        own = dict(own)
        if "optimizer" in own:
            opt = _mapping(own["optimizer"], f"per_method.{name}.optimizer", OPTIMIZER_DEFAULTS)
            own["optimizer"] = {k: v for k, v in _optimizer(opt).items() if k in opt}
        if "loss_weights" in own:
            weights = _mapping(own["loss_weights"], f"per_method.{name}.loss_weights", {t.value for t in Task})
            for k, v in weights.items():
                _expect(v, (int, float), f"per_method.{name}.loss_weights.{k}")
                if not 0 <= v < float("inf"):
                    raise ConfigError(f"per_method.{name}.loss_weights.{k} must be a finite number >= 0, got {v!r}")
            own["loss_weights"] = {k: float(v) for k, v in weights.items()}
        out[name] = own
    return out


def _is_kodak(spec: dict[str, Any], dataset: Any) -> bool:
    from .data import KodakDataset

    root = getattr(dataset, "root", None)
    return (spec["name"] == "kodak" or isinstance(dataset, KodakDataset)
            or (root is not None and any(part.lower().startswith("kodak") for part in Path(root).parts)))


def _kodak_error(spec: dict[str, Any], role: str) -> ConfigError:
    return ConfigError(f"Kodak is for evaluation only: {spec_label(spec)} cannot be {role} data; "
                       f"use bsds500, camvid, voc, builtin, procedural or a folder of other photos")


def _existing(candidates: tuple[dict[str, Any], ...]) -> list[tuple[dict[str, Any], Any]]:
    """The candidate dataset specs whose data is present, built."""
    from .errors import DataError

    found = []
    for spec in candidates:
        try:
            found.append((dict(spec), registry.build("dataset", spec)))
        except DataError:
            continue
    return found


def _train_datasets(value: Any, task: str, role: str = "training") -> list[tuple[dict[str, Any], Any]]:
    specs = [_spec(d, "dataset", f"data.{task}") for d in _as_list(value, f"data.{task}")]
    for s in specs:
        if s["name"] == "kodak":
            raise _kodak_error(s, role)
    built = [(s, registry.build("dataset", s)) for s in specs]
    for s, ds in built:
        if _is_kodak(s, ds):
            raise _kodak_error(s, role)
    return built


def _classes(built: list[tuple[dict[str, Any], Any]], what: str) -> tuple[int, int | None]:
    """The one (num_classes, ignore_index) of labelled datasets; ConfigError if absent or mixed."""
    for s, ds in built:
        if getattr(ds, "num_classes", None) is None:
            raise ConfigError(f"{what} dataset {spec_label(s)} has no labels; use camvid, voc or procedural")
    found = {(ds.num_classes, ds.ignore_index) for _, ds in built}
    if len(found) > 1:
        each = "; ".join(f"{spec_label(s)}: num_classes={ds.num_classes}, ignore_index={ds.ignore_index}"
                         for s, ds in built)
        raise ConfigError(f"{what} datasets disagree on their classes ({each}); use datasets of one label space")
    return found.pop()


def build_train_codec(spec: dict[str, Any], budget: Budget, settings: TrainSettings):
    """Build a method of a training scenario, passing the segmentation data's ``num_classes`` and
    ``ignore_index`` to constructors that take them."""
    params = registry.parameters("codec", spec["name"])
    extra = {}
    for key in ("num_classes", "ignore_index"):
        value = getattr(settings, key)
        if key not in params or value is None:
            continue
        if key in spec:
            if spec[key] != value:
                raise ConfigError(f"method {spec_label(spec)} sets {key}={spec[key]!r} but the segmentation "
                                  f"data has {key}={value!r}; drop the option (it is taken from the data)")
            continue
        extra[key] = value
    return registry.build("codec", spec, budget=budget, **extra)


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.+=" else "_" for c in text).strip("._") or "method"


def _validation_data(value: Any) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[dict[str, Any], Any]]]:
    """``validation.data``: one spec for every task, or ``{reconstruction: spec, segmentation: spec}``;
    a task not given takes the first existing of :data:`DEFAULT_VALIDATION_DATA`."""
    from .codec import Task

    tasks = [t.value for t in Task]
    if isinstance(value, list):
        raise ConfigError("validation.data must be one dataset spec, or one per task ({reconstruction: …, "
                          "segmentation: …})")
    if isinstance(value, dict) and set(value) and set(value) <= set(tasks):
        given = value
    elif value is None:
        given = {}
    else:
        given = {t: value for t in tasks}
    built = {}
    for task in tasks:
        if task in given:
            if isinstance(given[task], list):
                raise ConfigError(f"validation.data.{task} must be one dataset spec")
            (spec, ds), = _train_datasets(given[task], "validation", role="validation")
        else:
            spec, ds = _existing(DEFAULT_VALIDATION_DATA[task])[0]
        built[task] = (spec, ds)
    return {t: s for t, (s, _) in built.items()}, built


def _train_fields(sc: Scenario, raw: dict[str, Any]) -> None:
    from .codec import Task
    from .data import image_sizes

    st = TrainSettings()
    sc.train = st
    st.precision = raw.get("precision", "fp32")
    if st.precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {st.precision!r}; valid choices: {choices(PRECISIONS)}")
    budgets = _budgets(raw.get("budget"))
    if len(budgets) != 1:
        raise ConfigError(f"a training scenario takes exactly one budget (the codec is built for it), "
                          f"got {len(budgets)}")
    sc.budgets = budgets
    channel = raw.get("channel")
    if channel is None:
        raise ConfigError("missing required key 'channel' (the training channel, e.g. awgn)")
    if isinstance(channel, list):
        raise ConfigError(f"channel must be one channel spec (one model is trained per channel), got {channel!r}")
    sc.channels = [_spec(channel, "channel", "channel")]
    registry.build("channel", sc.channels[0])
    st.snr_db = _train_snr(raw.get("snr_db"))
    st.steps = _positive_int(raw, "steps", 2000)
    sc.batch_size = _positive_int(raw, "batch_size", 8, maximum=MAX_BATCH)
    st.crop = _positive_int(raw, "crop", 128, minimum=16, maximum=4096)
    st.checkpoint_every = _positive_int(raw, "checkpoint_every", 200)
    st.log_every = _positive_int(raw, "log_every", 1)
    st.optimizer = _optimizer(raw.get("optimizer"))
    st.init = _init(raw.get("init"))
    st.symbols = _symbols(raw.get("symbols"))

    # methods: registered, trainable, options known
    sc.methods = []
    for m in _as_list(raw.get("methods"), "methods"):
        spec = _spec(m, "codec", "methods")
        registry.check_kwargs("codec", spec["name"], {k: v for k, v in spec.items() if k != "name"})
        cls, _ = registry.lookup("codec", spec["name"])
        if not getattr(cls, "trainable", False):
            trainable = [n for n in registry.names("codec")
                         if getattr(registry.lookup("codec", n)[0], "trainable", False)]
            raise ConfigError(f"method {spec['name']!r} is not trainable (it has no learned parameters); "
                              f"trainable methods: {choices(trainable) or 'none registered'}")
        sc.methods.append(spec)

    # data
    data = _mapping(raw.get("data"), "data", {t.value for t in Task})
    rec = (_train_datasets(data["reconstruction"], "reconstruction") if "reconstruction" in data
           else _existing(DEFAULT_RECONSTRUCTION_DATA) or _existing(({"name": "builtin"},)))
    seg = (_train_datasets(data["segmentation"], "segmentation") if "segmentation" in data
           else _existing(DEFAULT_SEGMENTATION_DATA)[:1])
    st.num_classes, st.ignore_index = _classes(seg, "segmentation")
    st.data = {Task.RECONSTRUCTION.value: [s for s, _ in rec], Task.SEGMENTATION.value: [s for s, _ in seg]}

    val = _mapping(raw.get("validation"), "validation", {"every", "data", "snr_db"})
    st.validation_every = _positive_int(val, "every", 200)
    st.validation_data, vbuilt = _validation_data(val.get("data"))
    st.per_method = _per_method(raw.get("per_method"), sc.methods)
    st.validation_snr_db = [_finite(v, "each validation.snr_db value")
                            for v in _as_list(val.get("snr_db", [0, 10, 20]), "validation.snr_db")]
    _check_snr(st.validation_snr_db, "validation.snr_db")

    # each method: built at the budget, with the data's classes; tasks, parameters, budget
    budget, labels = sc.budgets[0], []
    sizes = {(st.crop, st.crop)} | {hw for _, vds in vbuilt.values() for hw in image_sizes(vds)}
    for spec in sc.methods:
        codec = build_train_codec(spec, budget, st)
        tasks = tuple(codec.tasks)
        if not tasks or any(not isinstance(t, Task) for t in tasks):
            raise ConfigError(f"method {spec_label(spec)}: tasks must be a non-empty tuple of Task, got {tasks!r}")
        if not any(p.requires_grad for p in codec.parameters()):
            raise ConfigError(f"method {spec_label(spec)} has no trainable parameters")
        codec.configure_training(**st.method_settings(spec["name"])["options"])
        unknown = sorted(set(st.method_settings(spec["name"])["loss_weights"]) - {t.value for t in tasks})
        if unknown:
            raise ConfigError(f"per_method.{spec['name']}.loss_weights names task(s) {choices(unknown)} the method "
                              f"does not train; its tasks: {choices([t.value for t in tasks])}")
        if Task.SEGMENTATION in tasks:
            if not seg:
                raise ConfigError(f"method {spec_label(spec)} trains segmentation but no segmentation data exists; "
                                  f"give data.segmentation (camvid, voc or procedural)")
            vspec, vds = vbuilt[Task.SEGMENTATION.value]
            vclasses = _classes([(vspec, vds)], "validation")
            if vclasses != (st.num_classes, st.ignore_index):
                raise ConfigError(f"validation data {spec_label(vspec)} has num_classes, ignore_index = {vclasses}, "
                                  f"the segmentation training data {(st.num_classes, st.ignore_index)}")
        for h, w in sorted(sizes):
            need, cap = codec.min_channel_uses(h, w), budget.channel_uses(h, w)
            if need > cap:
                raise ConfigError(f"budget {budget.label} (cap {cap} channel uses for a {h}x{w} image) is below "
                                  f"what method {spec_label(spec)} needs ({need}); raise the budget or the crop")
        labels.append(str(codec.label))
    names = [_safe_name(label) for label in labels]
    if len(set(names)) < len(names):
        names = [_safe_name(spec_label(spec)) for spec in sc.methods]
    if len(set(names)) < len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"method(s) {choices(dup)} listed twice; each method is trained once")
    st.names = names
