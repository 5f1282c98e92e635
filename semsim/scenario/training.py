"""``kind: train``: the settings ``semsim train`` reads (:class:`TrainSettings`), validated with
the data, the methods built at the budget and each method's output folder name."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .. import registry
from ..codec import Budget, Task, parse_ratio
from ..config import derive_seed
from ..errors import ConfigError, choices
from ..metrics import LabelSpace
from .base import COMMON_KEYS, Point, Scenario
from .fields import (MAX_BATCH, as_list, check_budget_fits, expect, finite, mapping, parse_budgets, parse_snr,
                     parse_spec, positive_int, safe_name, spec_key)

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

    @property
    def label_space(self) -> LabelSpace | None:
        """The segmentation data's classes (``None`` without segmentation data)."""
        return None if self.num_classes is None else LabelSpace(self.num_classes, self.ignore_index)

    def method_settings(self, name: str) -> dict[str, Any]:
        """Method ``name``'s recipe: its optimizer (the scenario's, updated by ``per_method``), its
        per-task loss weights (default 1) and its codec training options."""
        own = dict(self.per_method.get(name, {}))
        opt = dict(self.optimizer, **own.pop("optimizer", {}))
        return {"optimizer": opt, "loss_weights": own.pop("loss_weights", {}), "options": own}


def _train_snr(value: Any) -> tuple[float, float]:
    """Training's SNR: ``{low, high}`` (dB, drawn uniformly per image) or one number."""
    if value is None:
        return 0.0, 20.0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low = high = parse_snr(value, "snr_db")
    else:
        if not isinstance(value, dict) or set(value) != {"low", "high"}:
            raise ConfigError(f"training snr_db must be {{low: DB, high: DB}} (drawn uniformly per image) "
                              f"or one number, got {value!r}")
        low, high = (parse_snr(value[k], f"snr_db.{k}") for k in ("low", "high"))
        if high < low:
            raise ConfigError(f"training snr_db needs low <= high, got {value!r}")
    return low, high


def _optimizer(value: Any) -> dict[str, Any]:
    opt = dict(OPTIMIZER_DEFAULTS, **mapping(value, "optimizer", OPTIMIZER_DEFAULTS))
    finite(opt["lr"], "optimizer.lr")
    finite(opt["weight_decay"], "optimizer.weight_decay")
    expect(opt["warmup_steps"], int, "optimizer.warmup_steps")
    betas = opt["betas"]
    if (not isinstance(betas, (list, tuple)) or len(betas) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
        raise ConfigError(f"optimizer.betas must be two numbers in [0, 1), got {betas!r}")
    if not opt["lr"] > 0 or opt["weight_decay"] < 0 or opt["warmup_steps"] < 0:
        raise ConfigError(f"optimizer needs lr > 0, weight_decay >= 0 and warmup_steps >= 0, got {opt!r}")
    if opt["clip_grad_norm"] is not None:
        finite(opt["clip_grad_norm"], "optimizer.clip_grad_norm")
        if not opt["clip_grad_norm"] > 0:
            raise ConfigError(f"optimizer.clip_grad_norm must be positive or null (no clipping), "
                              f"got {opt['clip_grad_norm']!r}")
        opt["clip_grad_norm"] = float(opt["clip_grad_norm"])
    if opt["schedule"] not in SCHEDULES:
        raise ConfigError(f"unknown optimizer.schedule {opt['schedule']!r}; valid choices: {choices(SCHEDULES)}")
    expect(opt["final_lr"], (int, float), "optimizer.final_lr")
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
    from ..codec import SymbolPolicy

    fields = SymbolPolicy.__dataclass_fields__
    raw = mapping(value, "symbols", set(fields))
    out = {}
    for k, v in raw.items():
        out[k] = parse_ratio(v, f"symbols.{k}")
    SymbolPolicy(**out)  # checks the ranges
    return out


def _per_method(value: Any, methods: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    from ..codec import Task

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
            opt = mapping(own["optimizer"], f"per_method.{name}.optimizer", OPTIMIZER_DEFAULTS)
            own["optimizer"] = {k: v for k, v in _optimizer(opt).items() if k in opt}
        if "loss_weights" in own:
            weights = mapping(own["loss_weights"], f"per_method.{name}.loss_weights", {t.value for t in Task})
            for k, v in weights.items():
                expect(v, (int, float), f"per_method.{name}.loss_weights.{k}")
                if not 0 <= v < float("inf"):
                    raise ConfigError(f"per_method.{name}.loss_weights.{k} must be a finite number >= 0, got {v!r}")
            own["loss_weights"] = {k: float(v) for k, v in weights.items()}
        out[name] = own
    return out


def _is_kodak(spec: dict[str, Any], dataset: Any) -> bool:
    from ..data import KodakDataset

    root = getattr(dataset, "root", None)
    return (spec["name"] == "kodak" or isinstance(dataset, KodakDataset)
            or (root is not None and any(part.lower().startswith("kodak") for part in Path(root).parts)))


def _kodak_error(spec: dict[str, Any], role: str) -> ConfigError:
    return ConfigError(f"Kodak is for evaluation only: {spec_key(spec)} cannot be {role} data; "
                       f"use bsds500, camvid, voc, builtin, procedural or a folder of other photos")


def _existing(candidates: tuple[dict[str, Any], ...]) -> list[tuple[dict[str, Any], Any]]:
    """The candidate dataset specs whose data is present, built."""
    from ..errors import DataError

    found = []
    for spec in candidates:
        try:
            found.append((dict(spec), registry.build("dataset", spec)))
        except DataError:
            continue
    return found


def _train_datasets(value: Any, task: str, role: str = "training") -> list[tuple[dict[str, Any], Any]]:
    specs = [parse_spec(d, "dataset", f"data.{task}") for d in as_list(value, f"data.{task}")]
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
            raise ConfigError(f"{what} dataset {spec_key(s)} has no labels; use camvid, voc or procedural")
    found = {(ds.num_classes, ds.ignore_index) for _, ds in built}
    if len(found) > 1:
        each = "; ".join(f"{spec_key(s)}: num_classes={ds.num_classes}, ignore_index={ds.ignore_index}"
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
                raise ConfigError(f"method {spec_key(spec)} sets {key}={spec[key]!r} but the segmentation "
                                  f"data has {key}={value!r}; drop the option (it is taken from the data)")
            continue
        extra[key] = value
    return registry.build("codec", spec, budget=budget, **extra)


def _validation_data(value: Any) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[dict[str, Any], Any]]]:
    """``validation.data``: one spec for every task, or ``{reconstruction: spec, segmentation: spec}``;
    a task not given takes the first existing of :data:`DEFAULT_VALIDATION_DATA`."""
    from ..codec import Task

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



def train_cache() -> Path:
    """Where ``semsim train`` keeps its checkpoints by default: ``$SEMSIM_CACHE_DIR/train`` (default
    ``~/.cache/semsim/train``), outside the repository, so a later run on the machine continues."""
    from ..files import cache_dir

    return cache_dir() / "train"


@dataclass
class TrainScenario(Scenario):
    """A training scenario (see :mod:`semsim.scenario` for the YAML form): ``methods`` trained in
    turn at the one budget over the one channel; ``train`` holds the rest."""

    kind: ClassVar[str] = "train"
    keys: ClassVar[frozenset[str]] = COMMON_KEYS | {
        "methods", "budget", "channel", "snr_db", "steps", "batch_size", "crop", "data", "validation", "optimizer",
        "precision", "checkpoint_every", "log_every", "init", "symbols", "per_method"}

    budgets: list[Budget] = field(default_factory=list)
    methods: list[dict[str, Any]] = field(default_factory=list)
    batch_size: int = 8
    train: TrainSettings | None = None

    @classmethod
    def default_output(cls, name: str) -> str:
        return str(train_cache() / name)

    def points(self) -> list[Point]:
        """One point per method, whose seed fixes that method's initial weights."""
        return [Point(m, f"train|{spec_key(s)}", derive_seed(self.seed, "train", spec_key(s)), method=m)
                for m, s in enumerate(self.methods)]

    def parse(self, raw: dict[str, Any], check_classes: bool = True) -> None:
        st = self.train = TrainSettings()
        st.precision = raw.get("precision", "fp32")
        if st.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {st.precision!r}; valid choices: {choices(PRECISIONS)}")
        self.budgets = parse_budgets(raw.get("budget"))
        if len(self.budgets) != 1:
            raise ConfigError(f"a training scenario takes exactly one budget (the codec is built for it), "
                              f"got {len(self.budgets)}")
        channel = raw.get("channel")
        if channel is None:
            raise ConfigError("missing required key 'channel' (the training channel, e.g. awgn)")
        if isinstance(channel, list):
            raise ConfigError(f"channel must be one channel spec (one model is trained per channel), got {channel!r}")
        self.channels = [parse_spec(channel, "channel", "channel")]
        registry.build("channel", self.channels[0])
        st.snr_db = _train_snr(raw.get("snr_db"))
        st.steps = positive_int(raw, "steps", 2000)
        self.batch_size = positive_int(raw, "batch_size", 8, maximum=MAX_BATCH)
        st.crop = positive_int(raw, "crop", 128, minimum=16, maximum=4096)
        st.checkpoint_every = positive_int(raw, "checkpoint_every", 200)
        st.log_every = positive_int(raw, "log_every", 1)
        st.optimizer = _optimizer(raw.get("optimizer"))
        st.init = _init(raw.get("init"))
        st.symbols = _symbols(raw.get("symbols"))
        self.methods = [_trainable(m) for m in as_list(raw.get("methods"), "methods")]
        seg = _train_data(st, raw.get("data"))
        val = mapping(raw.get("validation"), "validation", {"every", "data", "snr_db"})
        st.validation_every = positive_int(val, "every", 200)
        st.validation_data, vbuilt = _validation_data(val.get("data"))
        st.per_method = _per_method(raw.get("per_method"), self.methods)
        st.validation_snr_db = [parse_snr(v, "validation.snr_db")
                                for v in as_list(val.get("snr_db", [0, 10, 20]), "validation.snr_db")]
        labels = [_check_method(s, self.budgets[0], st, seg, vbuilt) for s in self.methods]
        names = [safe_name(label) for label in labels]
        if len(set(names)) < len(names):
            names = [safe_name(spec_key(s)) for s in self.methods]
        if len(set(names)) < len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"method(s) {choices(dup)} listed twice; each method is trained once")
        st.names = names


def _trainable(item: Any) -> dict[str, Any]:
    """A method spec: registered, trainable, its options known."""
    s = parse_spec(item, "codec", "methods")
    registry.check_kwargs("codec", s["name"], {k: v for k, v in s.items() if k != "name"})
    cls, _ = registry.lookup("codec", s["name"])
    if not getattr(cls, "trainable", False):
        trainable = [n for n in registry.names("codec") if getattr(registry.lookup("codec", n)[0], "trainable", False)]
        raise ConfigError(f"method {s['name']!r} is not trainable (it has no learned parameters); "
                          f"trainable methods: {choices(trainable) or 'none registered'}")
    return s


def _train_data(st: TrainSettings, value: Any) -> list[tuple[dict[str, Any], Any]]:
    """``data`` by task (default: what exists of the default lists) into ``st``; returns the built
    segmentation datasets."""
    data = mapping(value, "data", {t.value for t in Task})
    rec = (_train_datasets(data["reconstruction"], "reconstruction") if "reconstruction" in data
           else _existing(DEFAULT_RECONSTRUCTION_DATA) or _existing(({"name": "builtin"},)))
    seg = (_train_datasets(data["segmentation"], "segmentation") if "segmentation" in data
           else _existing(DEFAULT_SEGMENTATION_DATA)[:1])
    st.num_classes, st.ignore_index = _classes(seg, "segmentation")
    st.data = {Task.RECONSTRUCTION.value: [s for s, _ in rec], Task.SEGMENTATION.value: [s for s, _ in seg]}
    return seg


def _check_method(s: dict[str, Any], budget: Budget, st: TrainSettings, seg: list,
                  vbuilt: dict[str, tuple[dict[str, Any], Any]]) -> str:
    """Build method ``s`` at the budget with the data's classes and check its tasks, parameters,
    loss weights, the segmentation data and the budget at the crop and validation sizes; its label."""
    from ..data import image_sizes

    codec = build_train_codec(s, budget, st)
    tasks = tuple(codec.tasks)
    if not tasks or any(not isinstance(t, Task) for t in tasks):
        raise ConfigError(f"method {spec_key(s)}: tasks must be a non-empty tuple of Task, got {tasks!r}")
    if not any(p.requires_grad for p in codec.parameters()):
        raise ConfigError(f"method {spec_key(s)} has no trainable parameters")
    own = st.method_settings(s["name"])
    codec.configure_training(**own["options"])
    unknown = sorted(set(own["loss_weights"]) - {t.value for t in tasks})
    if unknown:
        raise ConfigError(f"per_method.{s['name']}.loss_weights names task(s) {choices(unknown)} the method "
                          f"does not train; its tasks: {choices([t.value for t in tasks])}")
    if Task.SEGMENTATION in tasks:
        if not seg:
            raise ConfigError(f"method {spec_key(s)} trains segmentation but no segmentation data exists; "
                              f"give data.segmentation (camvid, voc or procedural)")
        vspec, vds = vbuilt[Task.SEGMENTATION.value]
        vclasses = _classes([(vspec, vds)], "validation")
        if vclasses != (st.num_classes, st.ignore_index):
            raise ConfigError(f"validation data {spec_key(vspec)} has num_classes, ignore_index = {vclasses}, "
                              f"the segmentation training data {(st.num_classes, st.ignore_index)}")
    sizes = {(st.crop, st.crop)} | {hw for _, vds in vbuilt.values() for hw in image_sizes(vds)}
    for h, w in sorted(sizes):
        check_budget_fits(codec, budget, h, w, f"a {h}x{w} image", spec_key(s), "raise the budget or the crop")
    return str(codec.display_name)
