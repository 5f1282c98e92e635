"""``semsim train``: one training loop for every learned codec.

A ``kind: train`` scenario (schema in :mod:`semsim.scenario`) names one or more trainable codecs,
one budget, one channel and an SNR range. Each method is trained in turn on identical draws::

    for step k = start+1 … steps:
        for task in codec.tasks:                       # one batch per task
            images, labels ← batch_size random crops (reflect-padded when an image is smaller)
            snr_db        ← uniform in [low, high], one per image
        seed_everything(noise seed of step k)          # the channel's noise, dropout, time steps …
        loss = Σ_task codec.training_step(task, images, labels, channel, snr_db)[0]
        backward; clip the gradient norm; AdamW step (skipped if the gradient is not finite)
        lr = lr_max · min(1, k / warmup_steps)

Determinism and resume: what step ``k`` draws (images, crop offsets, SNRs, the noise seed) is a
function of ``(scenario seed, k, task)`` only (:func:`~semsim.config.derive_seed`), so every method
of a scenario sees the same batches (common random numbers); the initial weights are a function
of ``(scenario seed, method)``. A checkpoint holds the fp32 weights and the full optimiser state,
so a run stopped at step ``k`` (``--max-minutes``, Ctrl-C, SIGTERM) and resumed from its
checkpoint ends with the same weights as an uninterrupted run. Rows of ``curve.csv`` and
``validation.csv`` beyond the checkpoint step are dropped on resume, so the files read as if the run
had never stopped.

Output per method, in ``<output>/<method>/``::

    checkpoint.safetensors   fp32 weights, step, settings (written every checkpoint_every steps,
    optimizer.safetensors    at the end and when stopped; both renamed into place together)
    curve.csv                step, per-task losses, loss, training PSNR / mIoU, lr, grad norm, wall s
    validation.csv           step, snr_db, PSNR and mIoU on the validation set via codec.transmit
    curve.png                loss (log) and validation PSNR / mIoU against the step
    <method>.safetensors     the final weights in bf16, with provenance (train_channel, SNR range,
                             budget, steps, data, seed, device, wall time, git commit, version)

and ``<output>/curves.png`` (the loss curves of all methods on shared axes) when there are several.
A method whose final weights exist for the requested number of steps is skipped on a rerun.

Multi-GPU: launched by ``torchrun`` (``WORLD_SIZE > 1``) the loop initialises the process group
(NCCL on CUDA, each rank on ``cuda:LOCAL_RANK``; Gloo on the CPU), wraps a small module whose
``forward`` runs ``codec.training_step`` for every task in ``DistributedDataParallel`` (DDP only
hooks ``forward``), and gives each rank ``batch_size / WORLD_SIZE`` images per task drawn with
rank-dependent seeds; gradients are averaged by DDP. Only rank 0 validates and writes files::

    torchrun --nproc_per_node 4 -m semsim train scenarios/train_semantic_small.yaml --device cuda

Example (Python)::

    from semsim.train import train
    paths = train("scenarios/train_semantic_small.yaml", max_minutes=40)   # {method: weights path}
"""
from __future__ import annotations

import csv
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import registry
from .codec import SymbolPolicy, Task
from .config import derive_seed, seed_everything, set_device
from .errors import ConfigError
from .metrics import miou_from_confusion, psnr
from .runner import _atomic_write, _fmt, _git_commit
from .scenario import Scenario, build_train_codec, load_scenario, spec_label
from .weights import (cumulative, load_optimizer, load_weights, read_meta, resolve_weights, save_optimizer,
                      save_weights, sha256)

CURVE_COLUMNS = ("step", "loss_reconstruction", "loss_segmentation", "loss", "psnr", "miou", "lr", "grad_norm",
                 "grad_reconstruction", "grad_segmentation", "wall_seconds")
VALIDATION_COLUMNS = ("step", "snr_db", "psnr", "miou", "wall_seconds")
CHECKPOINT, OPTIMIZER, CURVE, VALIDATION, PLOT = ("checkpoint.safetensors", "optimizer.safetensors", "curve.csv",
                                                   "validation.csv", "curve.png")


@dataclass
class Stopped:
    """Where a run stopped early (time limit or signal)."""

    method: str
    step: int
    steps: int
    minutes: float

    def message(self) -> str:
        where = f"at step {self.step} of {self.steps}" if self.step else "before its first step"
        return f"{self.method}: stopped {where} after {self.minutes:.1f} min; rerun the same command to resume"


# --- data ---------------------------------------------------------------------------------------

def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices outside ``[0, size)`` mirrored back in (reflection without repeating the edge)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.abs() % period
    return torch.where(index >= size, period - index, index)


def _window(size: int, crop: int, u: float) -> torch.Tensor | slice:
    """``crop`` indices into an axis of ``size``: a window at relative offset ``u`` in [0, 1) (a
    slice), or, for a shorter axis, the whole axis at a random place inside a reflect-padded window."""
    if size >= crop:
        start = min(int(u * (size - crop + 1)), size - crop)
        return slice(start, start + crop)
    before = min(int(u * (crop - size + 1)), crop - size)
    return _reflect(torch.arange(-before, crop - before), size)


class ImagePool:
    """The training images of one task: the union of some datasets, decoded on first use and kept
    in memory as ``uint8`` (labels as ``uint8`` when they fit).

    :param specs: dataset specs (registry ``"dataset"``).
    """

    def __init__(self, specs: list[dict[str, Any]]):
        self.datasets = [registry.build("dataset", s) for s in specs]
        self.index = [(d, i) for d, ds in enumerate(self.datasets) for i in range(len(ds))]
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def __len__(self) -> int:
        return len(self.index)

    def get(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sample ``k``: ``[3, H, W]`` uint8 and ``[H, W]`` integer labels or ``None``."""
        if k not in self._cache:
            d, i = self.index[k]
            s = self.datasets[d][i]
            image = (s.image * 255).round_().clamp_(0, 255).to(torch.uint8)
            label = s.label
            if label is not None:
                small = label.numel() == 0 or (int(label.min()) >= 0 and int(label.max()) <= 255)
                label = label.to(torch.uint8 if small else torch.int32)
            self._cache[k] = (image, label)
        return self._cache[k]

    def draw(self, gen: torch.Generator, batch: int, crop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``batch`` random ``crop x crop`` windows of random images: ``[B, 3, c, c]`` uint8 and
        ``[B, c, c]`` int64 labels (or ``None``). Draws a fixed amount from ``gen``."""
        picks = torch.randint(len(self), (batch,), generator=gen).tolist()
        offsets = torch.rand(batch, 2, generator=gen, dtype=torch.float64).tolist()
        images, labels = [], []
        for k, (u, v) in zip(picks, offsets):
            image, label = self.get(k)
            rows, cols = _window(image.shape[1], crop, u), _window(image.shape[2], crop, v)
            images.append(image[:, rows][:, :, cols])
            if label is not None:
                labels.append(label[rows][:, cols])
        return torch.stack(images), (torch.stack(labels).long() if labels else None)


# --- distributed --------------------------------------------------------------------------------

@dataclass
class _Dist:
    """This process's place in a ``torchrun`` launch (rank 0 of 1 when launched alone)."""

    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @classmethod
    def setup(cls, device: str, backend: str | None = None, timeout=None) -> tuple["_Dist", str]:
        """Join the launch: each rank on ``cuda:LOCAL_RANK`` (modulo the GPUs there are: ranks then
        share one, which only Gloo allows) with Sionna's device set to match, or on the CPU.

        :param backend: default NCCL on CUDA, Gloo on the CPU.
        :param timeout: of collectives (a ``datetime.timedelta``; default PyTorch's).
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(), device
        import torch.distributed as td

        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.startswith("cuda"):
            local %= max(torch.cuda.device_count(), 1)
            device = set_device(f"cuda:{local}")
            torch.cuda.set_device(local)
        owns = not td.is_initialized()
        if owns:
            td.init_process_group(backend or ("nccl" if device.startswith("cuda") else "gloo"),
                                  **({"timeout": timeout} if timeout is not None else {}))
        return cls(td.get_rank(), td.get_world_size(), owns), device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool, device: str) -> bool:
        """True on every rank if ``flag`` is true on some rank."""
        if self.world == 1:
            return flag
        import torch.distributed as td

        t = torch.tensor([float(flag)], device=device)
        td.all_reduce(t, op=td.ReduceOp.MAX)
        return bool(t.item())

    def mean(self, values: list[float], device: str) -> list[float]:
        if self.world == 1:
            return values
        import torch.distributed as td

        t = torch.tensor(values, dtype=torch.float64, device=device)
        td.all_reduce(t)
        return (t / self.world).tolist()

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            import torch.distributed as td

            td.all_reduce(t)
        return t

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            td.barrier()

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as td

            td.destroy_process_group()


class _TrainStep(torch.nn.Module):
    """``forward`` = one ``training_step`` per task; the module DDP wraps (it hooks ``forward``)."""

    def __init__(self, codec, loss_weights: dict[str, float] | None = None):
        super().__init__()
        self.codec = codec
        self.loss_weights = {Task(t): float(w) for t, w in (loss_weights or {}).items()}

    def forward(self, batches: dict[Task, tuple], channel):
        """Returns the weighted total ``Σ w_task · loss_task``, the unweighted losses, the weighted
        ones and the outputs (for logging)."""
        losses, weighted, outputs = {}, {}, {}
        for task, (images, labels, snr_db) in batches.items():
            losses[task], outputs[task] = self.codec.training_step(task, images, labels, channel, snr_db)
            weighted[task] = self.loss_weights.get(task, 1.0) * losses[task]
        return sum(weighted.values()), losses, weighted, outputs


# --- files --------------------------------------------------------------------------------------

def _read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of one of our CSVs; a torn last line (killed while appending) is dropped."""
    if not path.is_file():
        return []
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = csv.DictReader(text.splitlines())
    return [r for r in rows if None not in r and None not in r.values()]


def _rows_text(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    lines = [",".join(columns)] + [",".join(_fmt(r.get(c)) for c in columns) for r in rows]
    return "\n".join(lines) + "\n"


def _append(path: Path, row: dict[str, Any], columns: tuple[str, ...]) -> None:
    with open(path, "a", newline="") as f:
        f.write(",".join(_fmt(row.get(c)) for c in columns) + "\n")


def _num(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _save_png(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def plot_curves(folder: Path) -> Path:
    """``curve.png`` of one method's folder: loss (log scale) and validation PSNR / mIoU per SNR."""
    from matplotlib.figure import Figure

    curve = _read_rows(folder / CURVE)
    val = _read_rows(folder / VALIDATION)
    has_seg = any(not math.isnan(_num(r["miou"])) for r in val + curve)
    has_rec = any(not math.isnan(_num(r["psnr"])) for r in val + curve)
    panels = 1 + has_rec + has_seg
    fig = Figure(figsize=(4.6 * panels, 3.6))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    steps = [_num(r["step"]) for r in curve]
    for col, name in (("loss", "total"), ("loss_reconstruction", "reconstruction"),
                      ("loss_segmentation", "segmentation")):
        ys = [_num(r[col]) for r in curve]
        if any(not math.isnan(y) for y in ys) and (col == "loss" or has_rec + has_seg > 1):
            axes[0].plot(steps, ys, lw=0.8 if col == "loss" else 0.6, label=name)
    _log_if_positive(axes[0], [_num(r["loss"]) for r in curve])
    axes[0].set(xlabel="step", ylabel="training loss", title=folder.name)
    axes[0].legend(fontsize=7)
    snrs = sorted({_num(r["snr_db"]) for r in val})
    for ax, metric, ylabel, show in ((axes[1] if has_rec else None, "psnr", "validation PSNR (dB)", has_rec),
                                     (axes[-1] if has_seg else None, "miou", "validation mIoU", has_seg)):
        if not show:
            continue
        for snr in snrs:
            pts = [(_num(r["step"]), _num(r[metric])) for r in val if _num(r["snr_db"]) == snr]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=f"{snr:g} dB")
        ax.set(xlabel="step", ylabel=ylabel)
        ax.grid(alpha=0.3)
        if snrs:
            ax.legend(fontsize=7, title="SNR", title_fontsize=7)
    axes[0].grid(alpha=0.3)
    path = folder / PLOT
    _save_png(fig, path)
    return path


def _log_if_positive(ax, values: list[float]) -> None:
    finite = [v for v in values if not math.isnan(v)]
    if finite and min(finite) > 0:
        ax.set_yscale("log")


def plot_methods(out: Path, names: list[str]) -> Path:
    """``curves.png``: the training loss of each method, side by side on shared axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(names), 3.4))
    axes = fig.subplots(1, len(names), sharex=True, sharey=True, squeeze=False)[0]
    every = []
    for ax, name in zip(axes, names):
        rows = _read_rows(out / name / CURVE)
        ys = [_num(r["loss"]) for r in rows]
        every += ys
        ax.plot([_num(r["step"]) for r in rows], ys, lw=0.8)
        ax.set(title=name, xlabel="step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training loss")
    _log_if_positive(axes[0], every)
    path = out / "curves.png"
    _save_png(fig, path)
    return path


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("semsim")
    except PackageNotFoundError:
        from . import __version__

        return __version__


# --- the trainer --------------------------------------------------------------------------------

class Trainer:
    """Trains every method of a ``kind: train`` scenario. See the module docstring.

    :param scenario: a path, a parsed mapping or a :class:`~semsim.scenario.Scenario`.
    :param output: output folder (default: the scenario's ``output``).
    :param device: ``"cpu"`` / ``"cuda"``, overriding the scenario's.
    :param fresh: delete earlier checkpoints, curves and weights of these methods first.
    :param max_minutes: stop after the step that passes this wall time (counted from :meth:`run`),
        writing a checkpoint; ``0`` stops after one step.
    :param steps: overrides the scenario's ``steps``.
    :param progress: show a tqdm bar per method.
    :param stop_at_step: stop (as ``max_minutes`` does) once this step is done: a scripted chunk.
    """

    def __init__(self, scenario: Scenario | str | Path | dict[str, Any], output: str | Path | None = None,
                 device: str | None = None, fresh: bool = False, max_minutes: float | None = None,
                 steps: int | None = None, progress: bool = True, stop_at_step: int | None = None):
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.recipe = os.fspath(scenario) if isinstance(scenario, (str, Path)) else ""
        if sc.kind != "train" or sc.train is None:
            raise ConfigError(f"scenario {sc.name!r} is of kind {sc.kind!r}; `semsim train` needs kind: train "
                              f"(use `semsim run` for it)")
        for value, what in ((steps, "steps"), (stop_at_step, "stop_at_step")):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{what} must be a positive integer, got {value!r}")
        if max_minutes is not None and not max_minutes >= 0:
            raise ConfigError(f"max_minutes must be >= 0, got {max_minutes!r}")
        self.sc, self.st = sc, sc.train
        self.steps = steps or self.st.steps
        self.out = Path(output) if output is not None else sc.output
        self.fresh, self.max_minutes, self.progress, self.stop_at_step = fresh, max_minutes, progress, stop_at_step
        self.dist, self.device = _Dist.setup(set_device(device or sc.device))
        if sc.batch_size % self.dist.world:
            raise ConfigError(f"batch_size {sc.batch_size} must be divisible by the {self.dist.world} ranks")
        self.share = sc.batch_size // self.dist.world
        self.stopped: Stopped | None = None
        self._pools: dict[Task, ImagePool] = {}
        self._val_batches: dict[Task, list[tuple[torch.Tensor, torch.Tensor | None]]] = {}
        self._signal = False
        self._steps_done = 0
        self._data_hash: dict[str, list[str]] | None = None
        self._init_files: dict[int, tuple[Path, str]] = {}

    # --- data -----------------------------------------------------------------------------------
    def _pool(self, task: Task) -> ImagePool:
        if task not in self._pools:
            self._pools[task] = ImagePool(self.st.data[task.value])
        return self._pools[task]

    def _draw(self, tasks: tuple[Task, ...], k: int) -> dict[Task, tuple]:
        """Step ``k``'s batch of each task: ``(images [b,3,c,c] float, labels [b,c,c] int64 | None,
        snr_db [b] float32)`` on the device; the same for every method (common random numbers)."""
        low, high = self.st.snr_db
        batches = {}
        for task in tasks:
            gen = torch.Generator().manual_seed(self._seed("step", k, task.value))
            images, labels = self._pool(task).draw(gen, self.share, self.st.crop)
            snr = low + (high - low) * torch.rand(self.share, generator=gen)
            images = images.to(self.device, non_blocking=True).float().div_(255)
            if task is Task.SEGMENTATION:
                labels = labels.to(self.device, non_blocking=True)
            else:
                labels = None
            batches[task] = (images, labels, snr.to(self.device))
        return batches

    def _validation_batches(self, task: Task) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """The validation set of ``task`` (``validation.data``) in batches of one image size."""
        from .data import batches_by_size, stack

        if task not in self._val_batches:
            ds = registry.build("dataset", self.st.validation_data[task.value])
            self._val_batches[task] = [stack(b)[:2] for b in batches_by_size(ds, self.sc.batch_size)]
        return self._val_batches[task]

    # --- settings -------------------------------------------------------------------------------
    def settings(self, m: int) -> dict[str, Any]:
        """What fixes method ``m``'s training trajectory (all but the number of steps); a checkpoint
        made with other settings is not resumed."""
        st, spec = self.st, self.sc.methods[m]
        init = self._init_file(m)
        return {"seed": self.sc.seed, "method": spec, "budget": self.sc.budgets[0].label,
                "channel": spec_label(self.sc.channels[0]), "snr_db": list(st.snr_db),
                "batch_size": self.sc.batch_size, "crop": st.crop, "data": st.data,
                "world_size": self.dist.world, "symbols": st.symbols, **st.method_settings(spec["name"]),
                "init": {"from": st.init, "sha256": self._init_files[m][1] if init else ""},
                "data_sha256": self._data_sha256()}

    def _data_sha256(self) -> dict[str, list[str]]:
        """Content hashes of the training data per task (:func:`semsim.data.content_hash`): a
        checkpoint is not resumed on data that changed since (the run says so and asks for --fresh)."""
        if self._data_hash is None:
            from .data import content_hash

            self._data_hash = {task: [content_hash(registry.build("dataset", spec)) for spec in specs]
                               for task, specs in self.st.data.items()}
        return self._data_hash

    def _init_file(self, m: int) -> Path | None:
        """The weights method ``m`` starts from (``init``), or None to start from random weights;
        resolved (and sha256-checked) once per method."""
        if self.st.init == "scratch":
            return None
        if m not in self._init_files:
            spec = self.sc.methods[m]
            name = f"{spec['name']}-{spec.get('preset', 'small')}"
            folder = None if self.st.init == "shipped" else self.st.init["weights"]
            path = resolve_weights(name, folder)
            self._init_files[m] = (path, sha256(path))
        return self._init_files[m][0]

    def _seed(self, *key: object) -> int:
        """A seed from the scenario seed and ``key``, and this rank's place under ``torchrun``."""
        if self.dist.world > 1:
            key += (f"rank{self.dist.rank}of{self.dist.world}",)
        return derive_seed(self.sc.seed, *key)

    def _autocast(self):
        """bf16 autocast on CUDA or the CPU (AMX units run bf16 matrix products), else nothing."""
        if self.st.precision == "bf16":
            return torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16)
        return nullcontext()

    # --- the run --------------------------------------------------------------------------------
    def run(self) -> dict[str, Path]:
        """Train every method; returns name → final weights (or checkpoint, if stopped early)."""
        self.t0 = time.perf_counter()
        result: dict[str, Path] = {}
        try:
            with self._signals(), self._lock():
                if self.fresh and self.dist.main:
                    for name in self.st.names:
                        for f in (CHECKPOINT, OPTIMIZER, CURVE, VALIDATION, PLOT, f"{name}.safetensors"):
                            (self.out / name / f).unlink(missing_ok=True)
                    (self.out / "curves.png").unlink(missing_ok=True)
                self.dist.barrier()
                points = self.sc.points()
                for m, name in enumerate(self.st.names):
                    path = self._train_method(m, points[m].seed)
                    if path is not None:
                        result[name] = path
                    if self.stopped is not None:
                        break
                if len(self.st.names) > 1 and self.dist.main:
                    plot_methods(self.out, [n for n in self.st.names if (self.out / n / CURVE).is_file()])
                if self._signal:
                    raise KeyboardInterrupt
        finally:
            self.dist.close()
        return result

    @contextmanager
    def _lock(self):
        """One training run per output folder (rank 0 holds a kernel lock, released if it dies):
        two processes resuming one checkpoint would interleave their steps and curves."""
        if not self.dist.main:
            yield
            return
        from .errors import OutputError
        from .files import folder_lock

        try:
            with folder_lock(self.out, "train", {"scenario": self.sc.name, "command": "semsim train"},
                             exclusive=True):
                yield
        except OutputError as e:
            raise OutputError(f"another `semsim train` is training into '{self.out}' ({e.holder}); wait for it to "
                              f"end or give another --output", e.holder) from None

    @contextmanager
    def _signals(self):
        """Ctrl-C / SIGTERM: finish the step, write a checkpoint, then raise KeyboardInterrupt.
        A second Ctrl-C interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._signal and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._signal = True

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _minutes(self) -> float:
        return (time.perf_counter() - self.t0) / 60

    def _out_of_time(self) -> bool:
        return self.max_minutes is not None and self._minutes() >= self.max_minutes

    def _train_method(self, m: int, method_seed: int) -> Path | None:
        from tqdm.auto import tqdm

        name, spec, st = self.st.names[m], self.sc.methods[m], self.st
        folder = self.out / name
        final, ckpt, optp = folder / f"{name}.safetensors", folder / CHECKPOINT, folder / OPTIMIZER
        settings = self.settings(m)
        if final.is_file():
            meta = read_meta(final)
            if meta.get("step") == self.steps:
                if meta.get("settings") != _jsonable(settings):
                    raise ConfigError(f"{final} was trained with other settings "
                                      f"({_diff(meta.get('settings'), settings)}); rerun with --fresh to retrain")
                return final
        if self.dist.any(self._steps_done > 0 and self._out_of_time() or self._signal, self.device):
            self.stopped = Stopped(name, 0, self.steps, self._minutes())
            return ckpt if ckpt.is_file() else None

        seed_everything(derive_seed(method_seed, "init"))  # the initial weights
        codec = build_train_codec(spec, self.sc.budgets[0], st)
        recipe = st.method_settings(spec["name"])
        codec.symbol_policy = SymbolPolicy(**st.symbols)
        codec.configure_training(**recipe["options"])
        init = self._init_file(m)
        if init is not None:
            load_weights(codec, init)
        codec.to(self.device)
        channel = registry.build("channel", self.sc.channels[0])
        params = [p for p in codec.parameters() if p.requires_grad]
        opt_cfg = recipe["optimizer"]
        optimizer = torch.optim.AdamW(params, lr=opt_cfg["lr"], betas=tuple(opt_cfg["betas"]),
                                      weight_decay=opt_cfg["weight_decay"])
        start, wall0 = 0, 0.0
        if ckpt.is_file():
            meta = load_weights(codec, ckpt)
            if meta.get("settings") != _jsonable(settings):
                raise ConfigError(f"checkpoint {ckpt} was made with other settings "
                                  f"({_diff(meta.get('settings'), settings)}); rerun with --fresh to start over")
            opt_meta = load_optimizer(optimizer, optp)
            start, wall0 = int(meta["step"]), float(meta.get("wall_seconds", 0.0))
            if meta.get("git_commit", _commit()) != _commit() and self.dist.main:
                print(f"semsim train: {name}: resuming step {start} of a checkpoint written by commit "
                      f"{meta.get('git_commit') or 'unknown'}; the code is now {_commit() or 'unknown'}",
                      file=sys.stderr)
            if opt_meta.get("step") != start:
                raise ConfigError(f"{ckpt} (step {start}) and {optp} (step {opt_meta.get('step')}) do not match: "
                                  f"the previous run was killed while writing them; rerun with --fresh")
            if start > self.steps:
                raise ConfigError(f"checkpoint {ckpt} is at step {start}, beyond steps={self.steps}; "
                                  f"ask for more steps or rerun with --fresh")
        # rows beyond the checkpoint step go (they are recomputed identically)
        curve = [r for r in _read_rows(folder / CURVE) if start and _num(r["step"]) <= start]
        val = [r for r in _read_rows(folder / VALIDATION) if start and _num(r["step"]) <= start]
        last_val = max((int(_num(r["step"])) for r in val), default=-1)
        self.dist.barrier()  # every rank has read the files before rank 0 rewrites them
        if self.dist.main:
            folder.mkdir(parents=True, exist_ok=True)
            _atomic_write(folder / CURVE, _rows_text(curve, CURVE_COLUMNS))
            _atomic_write(folder / VALIDATION, _rows_text(val, VALIDATION_COLUMNS))

        model = _TrainStep(codec, recipe["loss_weights"])
        shared = [p for mod in codec.shared_modules().values() for p in mod.parameters() if p.requires_grad] \
            if len(codec.tasks) > 1 and self.dist.world == 1 else []
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(model, device_ids=[int(self.device.split(":")[1])]
                                            if self.device.startswith("cuda") else None,
                                            find_unused_parameters=True)
        t_chunk = time.perf_counter()

        def wall() -> float:
            return wall0 + time.perf_counter() - t_chunk

        def validate(k: int) -> None:
            if self.dist.main:
                for row in self.validate(codec, channel):
                    _append(folder / VALIDATION, dict(row, step=k, wall_seconds=wall()), VALIDATION_COLUMNS)
            self.dist.barrier()

        def checkpoint(k: int) -> None:
            if self.dist.main:
                meta = {"kind": "checkpoint", "step": k, "steps": self.steps, "wall_seconds": wall(), "git_commit": _commit(),
                        "settings": settings, "train_channel": spec_label(self.sc.channels[0])}
                tmp_w, tmp_o = folder / f".{CHECKPOINT}.new", folder / f".{OPTIMIZER}.new"
                save_weights(codec, tmp_w, meta, dtype=torch.float32)
                save_optimizer(optimizer, tmp_o, {"step": k})
                os.replace(tmp_o, optp)  # the two renames follow each other at once; a mismatch is caught on resume
                os.replace(tmp_w, ckpt)
                plot_curves(folder)
            self.dist.barrier()

        if start == 0:
            validate(0)
        codec.train()
        bar = tqdm(total=self.steps, initial=start, desc=name, unit="step", dynamic_ncols=True,
                   disable=not self.progress or not self.dist.main)
        seg_cm = (st.num_classes, st.ignore_index)
        clip = opt_cfg["clip_grad_norm"] or math.inf
        skipped = 0
        k = start
        for k in range(start + 1, self.steps + 1):
            lr = learning_rate(opt_cfg, k, self.steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batches = self._draw(tuple(codec.tasks), k)
            seed_everything(self._seed("noise", k))
            optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                total, losses, weighted, outputs = model(batches, channel)
            logging = k % st.log_every == 0 or k == self.steps
            task_grads = _backward_per_task(weighted, shared) if shared and logging else total.backward()
            self._steps_done += 1
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
            if math.isfinite(grad_norm):
                optimizer.step()
            else:
                skipped += 1
            if logging:
                row = self._log_row(k, total, losses, outputs, batches, seg_cm, lr, grad_norm, wall())
                for task, norm in (task_grads or {}).items():
                    row[f"grad_{task.value}"] = norm
                if self.dist.main:
                    _append(folder / CURVE, row, CURVE_COLUMNS)
                post = {"loss": f"{row['loss']:.4g}"}
                if not math.isnan(row["psnr"]):
                    post["psnr"] = f"{row['psnr']:.2f}"
                if not math.isnan(row["miou"]):
                    post["miou"] = f"{row['miou']:.3f}"
                if skipped:
                    post["skipped"] = skipped
                bar.set_postfix(post, refresh=False)
            bar.update(1)
            if k % st.validation_every == 0 or k == self.steps:
                codec.eval()
                validate(k)
                codec.train()
            stop = self.dist.any(self._out_of_time() or self._signal or k == self.stop_at_step, self.device)
            if k % st.checkpoint_every == 0 or k == self.steps or stop:
                checkpoint(k)
            if stop and k < self.steps:
                bar.close()
                self.stopped = Stopped(name, k, self.steps, self._minutes())
                return ckpt
        bar.close()
        if start == self.steps and last_val < self.steps:  # resumed a finished checkpoint, final weights missing
            codec.eval()
            validate(self.steps)
        if self.dist.main:
            save_weights(codec, final, self.provenance(m, wall()), dtype=torch.bfloat16)
        self.dist.barrier()
        return final

    def provenance(self, m: int, wall_seconds: float) -> dict[str, Any]:
        """The metadata of method ``m``'s final weights (``save_weights`` adds config and label)."""
        st, spec = self.st, self.sc.methods[m]
        cls, _ = registry.lookup("codec", spec["name"])
        channel = spec_label(self.sc.channels[0]) if getattr(cls, "channel_in_training", True) else ""
        init, settings = self._init_file(m), self.settings(m)
        before = cumulative(read_meta(init)) if init else None
        this_round = {"recipe": self.recipe, "scenario": self.sc.name, "steps": self.steps,
                      "batch_size": self.sc.batch_size, "crop": st.crop, "precision": st.precision,
                      "device_name": device_name(self.device), "world_size": self.dist.world,
                      "wall_seconds": wall_seconds, "init": settings["init"],
                      "images": self.steps * self.sc.batch_size,
                      "pixels": self.steps * self.sc.batch_size * st.crop ** 2}
        rounds = (before or {}).get("rounds", []) + [this_round]
        return {"method": spec["name"], "spec": spec, "train_channel": channel,
                "cumulative": {"steps": sum(r["steps"] for r in rounds), "images": sum(r["images"] for r in rounds),
                               "pixels": sum(r["pixels"] for r in rounds),
                               "wall_seconds": sum(r["wall_seconds"] for r in rounds), "rounds": rounds},
                "train_snr_db": list(st.snr_db), "budget": self.sc.budgets[0].label, "steps": self.steps,
                "step": self.steps, "batch_size": self.sc.batch_size, "crop": st.crop, "seed": self.sc.seed,
                "data": {t: [spec_label(s) for s in specs] for t, specs in st.data.items()},
                "validation_data": {t: spec_label(v) for t, v in st.validation_data.items()},
                "optimizer": settings["optimizer"], "loss_weights": settings["loss_weights"],
                "symbols": st.symbols, "options": settings["options"],
                "precision": st.precision, "device": self.device, "device_name": device_name(self.device),
                "world_size": self.dist.world, "recipe": self.recipe,
                "wall_seconds": wall_seconds, "git_commit": _commit(), "semsim_version": _version(),
                "scenario": self.sc.name, "settings": settings}

    def _log_row(self, k, total, losses, outputs, batches, seg_cm, lr, grad_norm, wall_seconds) -> dict[str, Any]:
        nan = math.nan
        values = [float(total.detach()), *(float(losses[t].detach()) if t in losses else nan for t in Task)]
        if Task.RECONSTRUCTION in outputs:
            images = batches[Task.RECONSTRUCTION][0]
            values.append(float(psnr(images, outputs[Task.RECONSTRUCTION].detach().float()).mean()))
        else:
            values.append(nan)
        values = self.dist.mean(values, self.device)
        miou = nan
        if Task.SEGMENTATION in outputs:
            cm = _confusion(outputs[Task.SEGMENTATION].detach(), batches[Task.SEGMENTATION][1], *seg_cm)
            miou = miou_from_confusion(self.dist.sum_(cm.to(self.device)).cpu())
        loss, loss_rec, loss_seg, train_psnr = values
        return {"step": k, "loss_reconstruction": loss_rec, "loss_segmentation": loss_seg, "loss": loss,
                "psnr": train_psnr, "miou": miou, "lr": lr, "grad_norm": grad_norm, "wall_seconds": wall_seconds}

    def validate(self, codec, channel) -> list[dict[str, Any]]:
        """PSNR (reconstruction) and mIoU (segmentation) on the validation sets at each validation
        SNR (:func:`validation_scores`); the channel noise is the same at every call."""
        return validation_scores(codec, channel, {t: self._validation_batches(t) for t in codec.tasks},
                                 self.st.validation_snr_db, self.sc.seed, self.device, self._autocast,
                                 (self.st.num_classes, self.st.ignore_index))


@torch.no_grad()
def validation_scores(codec, channel, batches: dict[Task, list[tuple[torch.Tensor, torch.Tensor | None]]],
                      snr_db: list[float], seed: int, device: str, autocast=nullcontext,
                      seg_classes: tuple[int | None, int | None] = (None, None)) -> list[dict[str, Any]]:
    """Scores of ``codec`` through ``codec.transmit`` in eval mode: one row per SNR (dB) with the mean
    PSNR over the reconstruction images and the dataset mIoU over the segmentation ones (NaN for a
    task the codec does not serve). The noise of each (task, SNR) is seeded from ``seed``.

    :param batches: task → ``[(images [B,3,H,W] float in [0, 1], labels [B,H,W] int64 | None), …]``.
    :param seg_classes: ``(num_classes, ignore_index)`` of the labels (default: the codec's classes).
    """
    was_training = codec.training
    codec.eval()
    num_classes = seg_classes[0] or getattr(codec, "num_classes", None)
    rows = []
    for snr in snr_db:
        row = {"snr_db": snr, "psnr": math.nan, "miou": math.nan}
        for task in codec.tasks:
            seed_everything(derive_seed(seed, "validation", task.value, snr))
            seg = task is Task.SEGMENTATION
            cm, scores = 0, []
            for images, labels in batches[task]:
                images = images.to(device)
                snr_t = torch.full((images.shape[0],), snr, device=device)
                with autocast():
                    out = _task_output(codec, task, images, labels, channel, snr_t)
                if seg:
                    cm = cm + _confusion(out, labels, num_classes, seg_classes[1])
                else:
                    scores += psnr(images, out.float()).cpu().tolist()
            if seg:
                row["miou"] = miou_from_confusion(cm)
            else:
                row["psnr"] = sum(scores) / len(scores)
        rows.append(row)
    codec.train(was_training)
    return rows


def learning_rate(opt: dict[str, Any], k: int, steps: int) -> float:
    """The learning rate of step ``k`` (1-based) of ``steps``: linear warm-up over ``warmup_steps``,
    then constant or a cosine decay to ``final_lr · lr`` at the last step."""
    lr = opt["lr"]
    warm = opt["warmup_steps"]
    if warm and k < warm:
        return lr * k / warm
    if opt.get("schedule", "constant") == "cosine" and steps > warm:
        progress = min(1.0, max(0.0, (k - warm) / (steps - warm)))
        final = opt.get("final_lr", 1.0)
        return lr * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))
    return lr


def _backward_per_task(weighted: dict[Task, torch.Tensor], shared: list[torch.nn.Parameter]) -> dict[Task, float]:
    """Backpropagate each task's weighted loss in turn (their sum, as one backward would) and
    return the norm of each task's gradient on the ``shared`` parameters."""
    norms, before = {}, None
    tasks = list(weighted)
    for i, task in enumerate(tasks):
        weighted[task].backward(retain_graph=i < len(tasks) - 1)
        now = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().float().flatten()
                         for p in shared])
        norms[task] = float((now if before is None else now - before).norm())
        before = now
    return norms


def _confusion(logits: torch.Tensor, labels: torch.Tensor, num_classes: int, ignore_index: int | None) -> torch.Tensor:
    """``[C, C]`` confusion counts (rows truth) of ``[B, C, H, W]`` logits against ``[B, H, W]`` labels.

    The functional form of :class:`semsim.metrics.ConfusionMatrix`: the metric object would gather
    across processes on its own under ``torchrun`` (and hang when only rank 0 validates), while
    here ranks are reduced explicitly.
    """
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    return multiclass_confusion_matrix(logits.argmax(1).cpu(), labels.cpu(), num_classes, ignore_index=ignore_index)


def _task_output(codec, task: Task, images, labels, channel, snr_db) -> torch.Tensor:
    """The output of ``codec`` for ``task`` through ``codec.transmit``.

    A multi-task codec is switched to ``task`` through a ``task`` sweep axis (``with_axes``) or,
    like the ``semantic`` codec, its ``task`` attribute (set for the call, then restored); one that
    offers neither is scored on its ``training_step`` output (eval mode, no gradients).
    """
    if codec.task is task:
        return codec.transmit(images, channel, snr_db).output
    if "task" in codec.axes:
        return codec.with_axes(task=task.value).transmit(images, channel, snr_db).output
    if "task" in vars(codec):
        old = codec.task
        codec.task = task
        try:
            return codec.transmit(images, channel, snr_db).output
        finally:
            codec.task = old
    labels = None if labels is None else labels.to(images.device)
    return codec.training_step(task, images, labels, channel, snr_db)[1]


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value))


def device_name(device: str) -> str:
    """What trained a model, in words: the GPU's name (``"NVIDIA H200"``) or ``"CPU (N cores)"``."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({os.cpu_count()} cores)"


def _diff(saved: dict[str, Any] | None, current: dict[str, Any]) -> str:
    saved, current = saved or {}, _jsonable(current)
    keys = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    return "; ".join(f"{k}: was {saved.get(k)!r}, now {current.get(k)!r}" for k in keys) or "unknown"


def _commit() -> str:
    commit = _git_commit()
    return "" if commit == "unknown" else commit


#: a training step (forward, backward, optimiser) costs about this many transmissions of its pixels
TRAIN_COST_FACTOR = 3.0


def estimate_seconds(sc: Scenario) -> float:
    """A rough training-time estimate on a 2-core CPU from each codec's ``cost_s_per_mpixel``:
    the training crops (``TRAIN_COST_FACTOR`` x a transmission) plus the validations."""
    from .data import image_sizes

    st = sc.train
    val_mpix = {t: sum(h * w for h, w in image_sizes(registry.build("dataset", v))) / 1e6
                for t, v in st.validation_data.items()}
    validations = st.steps // st.validation_every + 2
    total = 0.0
    for spec in sc.methods:
        codec = build_train_codec(spec, sc.budgets[0], st)
        tasks, cost = len(codec.tasks), codec.cost_s_per_mpixel
        total += cost * (tasks * TRAIN_COST_FACTOR * st.steps * sc.batch_size * st.crop ** 2 / 1e6
                         + validations * len(st.validation_snr_db) * sum(val_mpix[t.value] for t in codec.tasks))
    return total


def train(scenario: Scenario | str | Path | dict[str, Any], output: str | Path | None = None,
          device: str | None = None, fresh: bool = False, max_minutes: float | None = None,
          steps: int | None = None, progress: bool = True, stop_at_step: int | None = None) -> dict[str, Path]:
    """Train every method of a ``kind: train`` scenario (see :class:`Trainer` for the arguments).

    :returns: method name (its output folder) → final weights, or its checkpoint when the run
        stopped early (``max_minutes`` / ``stop_at_step``); rerun the same call to resume.
    """
    return Trainer(scenario, output=output, device=device, fresh=fresh, max_minutes=max_minutes, steps=steps,
                   progress=progress, stop_at_step=stop_at_step).run()
