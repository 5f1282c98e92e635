"""``kind: transmission`` (the default): dataset × budget × channel × SNR × (MCS) × method, each
point sent and scored by :func:`semsim.evaluate.evaluate_batches` into one row per image."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from .. import registry
from ..codec import Budget, Task
from ..config import derive_seed, seed_everything
from ..errors import ConfigError, choices
from ..evaluate import COLUMNS
from .base import COMMON_KEYS, Point, SweepScenario
from .fields import (MAX_BATCH, as_list, check_budget_fits, parse_budgets, parse_channels, parse_snr_list,
                     positive_int, refuse_repeats, parse_spec, spec_key)


@dataclass
class TransmissionScenario(SweepScenario):
    """A transmission sweep (see :mod:`semsim.scenario` for the YAML form).

    :ivar data_tasks: per entry of ``data``: the task whose methods it feeds (``None``: every method's).
    :ivar method_tasks: per method: its task value.
    """

    kind: ClassVar[str] = "transmission"
    keys: ClassVar[frozenset[str]] = COMMON_KEYS | {"channels", "snr_db", "data", "budget", "methods", "batch_size"}
    columns: ClassVar[tuple[str, ...]] = COLUMNS

    data: list[dict[str, Any]] = field(default_factory=list)
    data_tasks: list[str | None] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)
    methods: list[dict[str, Any]] = field(default_factory=list)
    method_tasks: list[str] = field(default_factory=list)
    batch_size: int = 4

    def parse(self, raw: dict[str, Any], check_classes: bool = True) -> None:
        self.channels = parse_channels(raw)
        self.snr_db = parse_snr_list(raw.get("snr_db"))
        self.batch_size = positive_int(raw, "batch_size", 4, maximum=MAX_BATCH)
        self.budgets = parse_budgets(raw.get("budget"))
        data = raw.get("data")
        tasks = {t.value for t in Task}
        if isinstance(data, dict) and "name" not in data and data and set(data) <= tasks:
            by_task = [(task, d) for task, value in data.items() for d in as_list(value, f"data.{task}")]
        elif isinstance(data, dict) and "name" not in data:
            raise ConfigError(f"data must be a dataset spec (with a name), a list of them, or a mapping by task "
                              f"with keys {choices(sorted(tasks))}; got keys {choices(sorted(map(str, data)))}")
        else:
            by_task = [(None, d) for d in as_list(data, "data")]
        self.data = [parse_spec(d, "dataset", "data") for _, d in by_task]
        self.data_tasks = [task for task, _ in by_task]
        refuse_repeats([spec_key(d) + (f" under {t}" if t else "") for d, t in zip(self.data, self.data_tasks)],
                       "data")
        datasets = [registry.build("dataset", d) for d in self.data]  # DataError for a missing folder
        self.methods = []
        for m in as_list(raw.get("methods"), "methods"):
            s = parse_spec(m, "codec", "methods")
            registry.check_kwargs("codec", s["name"], {k: v for k, v in s.items() if k != "name"})
            self.methods.append(s)
        refuse_repeats([spec_key(m) for m in self.methods], "methods")
        self._check_methods(datasets, check_classes)

    def _check_methods(self, datasets: list, check_classes: bool = True) -> None:
        """Build each method at each budget, fix its sweep axes, and check it can meet the budget."""
        from ..data import image_sizes

        codecs: dict[tuple[int, int], Any] = {}

        def codec_at(b: int, m: int):
            if (b, m) not in codecs:
                codecs[b, m] = registry.build("codec", self.methods[m], budget=self.budgets[b])
            return codecs[b, m]

        self.method_tasks = [codec_at(0, m).task.value for m in range(len(self.methods))]
        for m, s in enumerate(self.methods):
            if not any(self.pairs(d, m) for d in range(len(self.data))):
                raise ConfigError(f"method {spec_key(s)!r} does {self.method_tasks[m]} but the scenario's data "
                                  f"has no {self.method_tasks[m]} entry; add one under data")
        for d, (dspec, ds) in enumerate(zip(self.data, datasets)):
            sizes = image_sizes(ds)
            for b, budget in enumerate(self.budgets):
                for m, s in enumerate(self.methods):
                    if not self.pairs(d, m):
                        continue
                    codec = codec_at(b, m)
                    _check_classes(codec, s, dspec, ds, check_classes)
                    if codec.axes:
                        s.update(codec.sweep_values())
                    for h, w in sizes:
                        check_budget_fits(codec, budget, h, w, f"a {h}x{w} image of {spec_key(dspec)}",
                                          repr(s["name"]), "raise the budget or drop the method")

    def pairs(self, d: int, m: int) -> bool:
        """Whether method ``m`` runs on dataset ``d`` (task-keyed data feeds only its task's methods)."""
        task = self.data_tasks[d] if d < len(self.data_tasks) else None
        return task is None or m >= len(self.method_tasks) or self.method_tasks[m] == task

    def points(self) -> list[Point]:
        pts = []
        for d, data in enumerate(self.data):
            for budget in self.budgets:
                for c, ch in enumerate(self.channels):
                    for snr in self.snr_db:
                        for m, method in enumerate(self.methods):
                            if not self.pairs(d, m):
                                continue
                            for axes in _axes_product(method):
                                key = "|".join([spec_key(data), budget.key, spec_key(ch), f"snr={snr:g}",
                                                spec_key(method, skip=("mcs",))]
                                               + [f"{k}={v}" for k, v in axes])
                                pts.append(Point(len(pts), key, derive_seed(self.seed, key), d, budget, c,
                                                 snr, m, axes))
        return pts

    # --- running ---------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {"kind": self.kind, "batch_size": self.batch_size}

    def specs(self) -> dict[str, list[dict[str, Any]]]:
        return {"channel": self.channels, "dataset": self.data, "codec": self.methods}

    def input_refs(self, pt: Point) -> list[tuple[str, int]]:
        return [("channel", pt.channel), ("data", pt.data), ("content", pt.data), ("method", pt.method),
                ("weights", pt.method)]

    def point_rows(self, runner, pt: Point) -> list[dict[str, Any]]:
        """Every image of the point's dataset, in batches of ``batch_size`` same-size images, sent
        with the point's seed: one row per image (mIoU: over the whole dataset, in every row)."""
        from ..data import batches_by_size, stack
        from ..evaluate import evaluate_batches
        from ..metrics import LabelSpace

        ds, channel = runner.dataset(pt.data), runner.channel(pt.channel)
        codec = runner.codec(pt)
        seed_everything(pt.seed)
        base = {"scenario": self.name, "dataset": spec_key(self.data[pt.data]), "task": codec.task.value,
                "method": codec.display_name, "weights": codec.weights, "train_channel": codec.train_channel,
                "channel": spec_key(self.channels[pt.channel]), "snr_db": pt.snr_db, "budget": pt.budget.key,
                "seed": pt.seed, "point": pt.id, **dict(pt.axes)}
        space = LabelSpace(ds.num_classes, ds.ignore_index) if getattr(ds, "num_classes", None) else None
        batches = (stack(b) for b in batches_by_size(runner.samples(pt.data), self.batch_size))
        ev = evaluate_batches(codec, channel, batches, pt.snr_db, task=codec.task, label_space=space,
                              device=runner.device)
        return [dict(base, **row) for row in ev.rows]

    def point_seconds(self) -> list[float]:
        """A codec's ``cost_s_per_mpixel`` times the megapixels of its dataset."""
        from ..data import image_sizes

        mpix: dict[int, float] = {}
        cost: dict[tuple[int, str], float] = {}
        out = []
        for p in self.points():
            if p.data not in mpix:
                mpix[p.data] = sum(h * w for h, w in image_sizes(registry.build("dataset", self.data[p.data]))) / 1e6
            key = (p.method, p.budget.key)
            if key not in cost:
                cost[key] = registry.build("codec", self.methods[p.method], budget=p.budget).cost_s_per_mpixel
            out.append(cost[key] * mpix[p.data])
        return out


def _check_classes(codec, method: dict[str, Any], dspec: dict[str, Any], ds, check_classes: bool) -> None:
    """A segmentation method needs labelled data of its class count (unless ``check_classes`` is off)."""
    if codec.task is not Task.SEGMENTATION:
        return
    if getattr(ds, "num_classes", None) is None:
        raise ConfigError(f"method {method['name']!r} does segmentation but dataset "
                          f"{spec_key(dspec)} has no labels; use camvid, voc or procedural")
    classes = getattr(codec, "num_classes", None)
    if check_classes and classes is not None and classes != ds.num_classes:
        raise ConfigError(f"method {method['name']!r} predicts {classes} classes but dataset "
                          f"{spec_key(dspec)} has {ds.num_classes}; use weights trained on "
                          f"that dataset (or set num_classes: {ds.num_classes})")


def _axes_product(method: dict[str, Any]) -> list[tuple[tuple[str, Any], ...]]:
    mcs = method.get("mcs")
    if mcs is None:
        return [()]
    return [(("mcs", m),) for m in mcs]
