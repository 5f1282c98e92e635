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

The parts live apart: the batches, validation sets and time estimate in :mod:`semsim.train_data`
(crops from :mod:`semsim.data.crops`), one step (learning rate, the module DDP wraps, per-task
gradient norms, the curve row) in :mod:`semsim.train_step`, validation
through :func:`semsim.evaluate.scores_per_snr`, checkpoints in :mod:`semsim.train_checkpoint`, the ranks in
:mod:`semsim.distributed`, the curves in :mod:`semsim.plots` and the CSV files in
:mod:`semsim.results`; this module holds the loop. A learned codec's ``training_step`` is its
``forward`` (:class:`~semsim.codec.CodecOutput`) and the loss of :mod:`semsim.nn.losses`.

Example (Python)::

    from semsim.train import train
    paths = train("scenarios/train_semantic_small.yaml", max_minutes=40)   # {method: weights path}
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import registry
from .codec import SymbolPolicy
from .config import derive_seed, seed_everything, set_device
from .distributed import Dist
from .errors import ConfigError
from .files import write_atomic
from .plots import plot_training, plot_training_losses
from .provenance import device_name, known_commit, semsim_version
from .results import append_row, csv_text, num, read_rows
from .scenario import Scenario, build_train_codec, load_scenario, spec_key
from .train_checkpoint import CHECKPOINT, OPTIMIZER, is_finished, resume, weights_metadata, write_checkpoint
from .train_data import TrainData, estimate_seconds
from .train_step import (CURVE_COLUMNS, MethodRun, TrainStep, backward_per_task, curve_row, learning_rate,
                         progress_postfix)
from .evaluate import scores_per_snr
from .weights import cumulative, load_weights, read_meta, resolve_weights, save_weights, sha256

VALIDATION_COLUMNS = ("step", "snr_db", "psnr", "miou", "wall_seconds")
__all__ = ["CURVE_COLUMNS", "VALIDATION_COLUMNS", "Stopped", "Trainer", "estimate_seconds", "plot_curves",
           "plot_methods", "train"]
CURVE, VALIDATION, PLOT = "curve.csv", "validation.csv", "curve.png"


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


def plot_curves(folder: Path) -> Path:
    """``curve.png`` of one method's folder (:func:`semsim.plots.plot_training`)."""
    return plot_training(read_rows(folder / CURVE), read_rows(folder / VALIDATION), folder / PLOT, folder.name)


def plot_methods(out: Path, names: list[str]) -> Path:
    """``curves.png``: the training loss of each method, side by side on shared axes."""
    return plot_training_losses({n: read_rows(out / n / CURVE) for n in names}, out / "curves.png")


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
        self.dist, self.device = Dist.setup(set_device(device or sc.device))
        if sc.batch_size % self.dist.world:
            raise ConfigError(f"batch_size {sc.batch_size} must be divisible by the {self.dist.world} ranks")
        self.stopped: Stopped | None = None
        self.data = TrainData(sc, sc.batch_size // self.dist.world, self._seed, self.device)
        self._signal = False
        self._steps_done = 0
        self._init_files: dict[int, tuple[Path, str]] = {}

    # --- settings -------------------------------------------------------------------------------
    def settings(self, m: int) -> dict[str, Any]:
        """What fixes method ``m``'s training trajectory (all but the number of steps); a checkpoint
        made with other settings is not resumed."""
        st, spec = self.st, self.sc.methods[m]
        init = self._init_file(m)
        return {"seed": self.sc.seed, "method": spec, "budget": self.sc.budgets[0].key,
                "channel": spec_key(self.sc.channels[0]), "snr_db": list(st.snr_db),
                "batch_size": self.sc.batch_size, "crop": st.crop, "data": st.data,
                "world_size": self.dist.world, "symbols": st.symbols, **st.method_settings(spec["name"]),
                "init": {"from": st.init, "sha256": self._init_files[m][1] if init else ""},
                "data_sha256": self.data.sha256()}

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

    # --- one method -----------------------------------------------------------------------------
    def _train_method(self, m: int, method_seed: int) -> Path | None:
        """Train method ``m`` from scratch, its ``init`` weights or its checkpoint; returns its final
        weights, or its checkpoint (None if it has none) when the run stops first."""
        name = self.st.names[m]
        folder = self.out / name
        final, settings = folder / f"{name}.safetensors", self.settings(m)
        if is_finished(final, self.steps, settings):
            return final
        if self.dist.any(self._steps_done > 0 and self._out_of_time() or self._signal, self.device):
            self.stopped = Stopped(name, 0, self.steps, self._minutes())
            return folder / CHECKPOINT if (folder / CHECKPOINT).is_file() else None
        run = self._prepare(m, method_seed, settings)
        if run.start == 0:
            self._validate(run, 0)
        if not self._loop(run):
            return folder / CHECKPOINT
        if run.start == self.steps and run.last_validation < self.steps:  # a finished checkpoint, no final weights
            run.codec.eval()
            self._validate(run, self.steps)
        if self.dist.main:
            save_weights(run.codec, final, self.provenance(m, run.wall()), dtype=torch.bfloat16)
        self.dist.barrier()
        return final

    def _prepare(self, m: int, method_seed: int, settings: dict[str, Any]) -> MethodRun:
        """Method ``m``'s codec (initial weights seeded by the method, or its ``init`` file),
        channel, optimiser and wrapped step, resumed from its checkpoint if there is one; the
        curve and validation rows beyond the checkpoint step are dropped (they are recomputed
        identically)."""
        spec, name = self.sc.methods[m], self.st.names[m]
        seed_everything(derive_seed(method_seed, "init"))  # the initial weights
        codec = build_train_codec(spec, self.sc.budgets[0], self.st)
        recipe = self.st.method_settings(spec["name"])
        codec.symbol_policy = SymbolPolicy(**self.st.symbols)
        codec.configure_training(**recipe["options"])
        if self._init_file(m) is not None:
            load_weights(codec, self._init_file(m))
        codec.to(self.device)
        channel = registry.build("channel", self.sc.channels[0])
        params = [p for p in codec.parameters() if p.requires_grad]
        opt_cfg = recipe["optimizer"]
        optimizer = torch.optim.AdamW(params, lr=opt_cfg["lr"], betas=tuple(opt_cfg["betas"]),
                                      weight_decay=opt_cfg["weight_decay"])
        folder = self.out / name
        start, wall0 = resume(codec, optimizer, folder, settings, self.steps, say=self.dist.main)
        curve = [r for r in read_rows(folder / CURVE) if start and num(r["step"]) <= start]
        val = [r for r in read_rows(folder / VALIDATION) if start and num(r["step"]) <= start]
        self.dist.barrier()  # every rank has read the files before rank 0 rewrites them
        if self.dist.main:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(folder / CURVE, csv_text(curve, CURVE_COLUMNS))
            write_atomic(folder / VALIDATION, csv_text(val, VALIDATION_COLUMNS))
        model, shared = self._wrap(codec, recipe["loss_weights"])
        return MethodRun(m, name, folder, settings, codec, channel, optimizer, params, model, shared, opt_cfg,
                         start=start, wall0=wall0, t_chunk=time.perf_counter(),
                         last_validation=max((int(num(r["step"])) for r in val), default=-1))

    def _wrap(self, codec, loss_weights: dict[str, float]) -> tuple[torch.nn.Module, list[torch.nn.Parameter]]:
        """The module a step calls (in DDP under ``torchrun``) and the parameters several tasks
        share (their per-task gradient norms are logged; one process only)."""
        model = TrainStep(codec, loss_weights)
        shared = [p for mod in codec.shared_modules().values() for p in mod.parameters() if p.requires_grad] \
            if len(codec.tasks) > 1 and self.dist.world == 1 else []
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(model, device_ids=[int(self.device.split(":")[1])]
                                            if self.device.startswith("cuda") else None,
                                            find_unused_parameters=True)
        return model, shared

    def _loop(self, run: MethodRun) -> bool:
        """Steps ``start+1 … steps`` with logging, validation and checkpoints; False if stopped early."""
        from tqdm.auto import tqdm

        st = self.st
        run.codec.train()
        bar = tqdm(total=self.steps, initial=run.start, desc=run.name, unit="step", dynamic_ncols=True,
                   disable=not self.progress or not self.dist.main)
        skipped = 0
        for k in range(run.start + 1, self.steps + 1):
            logging = k % st.log_every == 0 or k == self.steps
            row = self._step(run, k, logging)
            skipped += not math.isfinite(row["grad_norm"])
            if logging:
                if self.dist.main:
                    append_row(run.folder / CURVE, row, CURVE_COLUMNS)
                bar.set_postfix(progress_postfix(row, skipped), refresh=False)
            bar.update(1)
            if k % st.validation_every == 0 or k == self.steps:
                run.codec.eval()
                self._validate(run, k)
                run.codec.train()
            stop = self.dist.any(self._out_of_time() or self._signal or k == self.stop_at_step, self.device)
            if k % st.checkpoint_every == 0 or k == self.steps or stop:
                self._checkpoint(run, k)
            if stop and k < self.steps:
                bar.close()
                self.stopped = Stopped(run.name, k, self.steps, self._minutes())
                return False
        bar.close()
        return True

    def _step(self, run: MethodRun, k: int, logging: bool) -> dict[str, Any]:
        """Step ``k``: draw the batches, seed the noise, forward, backward, clip, AdamW (skipped when
        the gradient is not finite). Returns the curve row (its losses and scores only if ``logging``)."""
        lr = learning_rate(run.opt_cfg, k, self.steps)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        batches = self.data.draw(tuple(run.codec.tasks), k)
        seed_everything(self._seed("noise", k))
        run.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            total, losses, weighted, outputs = run.model(batches, run.channel)
        task_grads = backward_per_task(weighted, run.shared) if run.shared and logging else total.backward()
        self._steps_done += 1
        grad_norm = float(torch.nn.utils.clip_grad_norm_(run.params, run.opt_cfg["clip_grad_norm"] or math.inf))
        if math.isfinite(grad_norm):
            run.optimizer.step()
        row = {"step": k, "lr": lr, "grad_norm": grad_norm}
        if logging:
            row.update(curve_row(k, total, losses, outputs, batches, (self.st.num_classes, self.st.ignore_index),
                                 self.dist, self.device), wall_seconds=run.wall())
            row.update({f"grad_{task.value}": norm for task, norm in (task_grads or {}).items()})
        return row

    def _validate(self, run: MethodRun, k: int) -> None:
        if self.dist.main:
            for row in self.validate(run.codec, run.channel):
                append_row(run.folder / VALIDATION, dict(row, step=k, wall_seconds=run.wall()), VALIDATION_COLUMNS)
        self.dist.barrier()

    def _checkpoint(self, run: MethodRun, k: int) -> None:
        if self.dist.main:
            meta = {"kind": "checkpoint", "step": k, "steps": self.steps, "wall_seconds": run.wall(),
                    "git_commit": known_commit(), "settings": run.settings,
                    "train_channel": spec_key(self.sc.channels[0])}
            write_checkpoint(run.codec, run.optimizer, run.folder, meta)
            plot_curves(run.folder)
        self.dist.barrier()

    def validate(self, codec, channel) -> list[dict[str, Any]]:
        """PSNR (reconstruction) and mIoU (segmentation) on the validation sets at each validation
        SNR through the one send-and-score path (:func:`~semsim.evaluate.scores_per_snr`); the
        channel noise is the same at every call."""
        return scores_per_snr(codec, channel, {t: self.data.validation_batches(t) for t in codec.tasks},
                              self.st.validation_snr_db, self.sc.seed, label_space=self.st.label_space,
                              device=self.device, metrics=("psnr", "miou"), autocast=self._autocast)

    def provenance(self, m: int, wall_seconds: float) -> dict[str, Any]:
        """The metadata of method ``m``'s final weights (:func:`~semsim.train_checkpoint.weights_metadata`)."""
        init = self._init_file(m)
        meta = weights_metadata(self.sc, m, self.steps, self.settings(m), cumulative(read_meta(init)) if init else None,
                                self.recipe, self.device, device_name(self.device), self.dist.world, wall_seconds)
        return {**meta, "git_commit": known_commit(), "semsim_version": semsim_version()}


def train(scenario: Scenario | str | Path | dict[str, Any], output: str | Path | None = None,
          device: str | None = None, fresh: bool = False, max_minutes: float | None = None,
          steps: int | None = None, progress: bool = True, stop_at_step: int | None = None) -> dict[str, Path]:
    """Train every method of a ``kind: train`` scenario (see :class:`Trainer` for the arguments).

    :returns: method name (its output folder) → final weights, or its checkpoint when the run
        stopped early (``max_minutes`` / ``stop_at_step``); rerun the same call to resume.
    """
    return Trainer(scenario, output=output, device=device, fresh=fresh, max_minutes=max_minutes, steps=steps,
                   progress=progress, stop_at_step=stop_at_step).run()
