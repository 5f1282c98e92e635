"""Send one image through one method and one channel: ``semsim transmit`` and :func:`transmit`.

The paper's system (``semantic``) is the default method: the task KB maps the free-text request to
a task (reconstruction or segmentation), and the same codec serves either. Any registered codec can
be named instead; one whose task differs from the resolved one is refused. The result holds the
output, the channel-use bookkeeping and the metric (PSNR for a reconstruction; mIoU for a
segmentation, when a ground-truth label map is given), and a picture: the reconstruction, or the
input beside a colour overlay of the predicted classes.

Example::

    >>> import semsim, torch
    >>> img = torch.rand(3, 64, 96)
    >>> r = semsim.transmit(img, "send me the photo", channel="awgn", snr_db=10.0, preset="small")
    >>> r.task, r.channel_uses, round(r.cbr, 4), r.picture.size
    ('reconstruction', 1152, 0.0625, (96, 64))
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from . import registry
from .codec import Budget, Task, cbr
from .errors import ConfigError, DataError, choices
from .pictures import check_output, overlay, save_picture, to_picture
from .scenario import check_budget_fits, parse_budget, parse_snr, spec_key

DEFAULT_METHOD = "semantic"
DEFAULT_BUDGET = Budget("cbr", 1 / 16)
DEFAULT_PRESET = "small"
#: the MCS a digital method sends with when none is given (one MCS per transmission)
DEFAULT_MCS = "16qam-1/2"


def default_weights(method: str, preset: str | None) -> Path | None:
    """The shipped weights file of ``method`` at ``preset``, or None where none ships.

    The file ``weights="pretrained"`` loads (:func:`semsim.presets.shipped_weights`);
    ``semsim transmit`` uses it when ``--weights`` is not given.
    """
    from .presets import shipped_weights
    from .weights import resolve_weights

    name = shipped_weights(method, preset or "small")
    return resolve_weights(name) if name else None


def resolve_task(request: str, force: str = 'task="{task}"'):
    """Map a free-text request to a task with the task KB (Sentence-BERT, loaded once per process).

    :param force: how to name a task instead, for the message of an ambiguous request.
    :returns: a :class:`~semsim.semantic.task_kb.TaskMatch`: ``task``, its ``score`` and every
        task's cosine similarity ``scores``.
    :raises TaskError: the request matches no known task (the message lists them).
    :raises AmbiguousTaskError: a :class:`~semsim.errors.ConfigError` too: the best two tasks score
        within the KB's margin; the message names both with their scores and how to force one.
    """
    from .semantic.task_kb import TaskKB

    return TaskKB().resolve(request, force)


def method_tasks(method: str) -> tuple[Task, ...]:
    """The tasks a registered codec serves: every task if its constructor takes ``task``."""
    cls, preset = registry.lookup("codec", method)
    if "task" in registry.parameters("codec", method):
        return tuple(Task)
    return (Task(preset.get("task", cls.task)),)


@dataclass
class TransmitResult:
    """One image sent through one method and channel (see :func:`transmit`).

    :ivar task: ``"reconstruction"`` or ``"segmentation"``.
    :ivar request: the free-text request, or None when the task was given or implied by the method.
    :ivar scores: the task KB's cosine similarity per task (empty without a request).
    :ivar method: the registered codec name; ``display_name`` its name in tables and plots.
    :ivar weights: the weights file loaded ("" when untrained or not learned).
    :ivar train_channel: the channel those weights were trained on ("" if unknown or none).
    :ivar channel: the channel spec as a label (``rayleigh``, ``rayleigh(block_length=64)``).
    :ivar image: ``[3, H, W]`` float in [0, 1], the input.
    :ivar output: ``[3, H, W]`` float in [0, 1] (reconstruction) or ``[C, H, W]`` logits.
    :ivar prediction: ``[H, W]`` int64 predicted classes (segmentation), else None.
    :ivar picture: what :meth:`save` writes: the reconstruction (``W x H``), or the input beside
        the class overlay (``2W x H``).
    :ivar channel_uses: complex data symbols sent; ``overhead``: pilots and cyclic prefix besides.
    :ivar cbr: ``channel_uses / (3 H W)``.
    :ivar psnr: dB (reconstruction), else NaN. ``miou``: against the ground truth ``truth`` given to
        :func:`transmit` (segmentation), else NaN.
    :ivar failed: a digital receiver could not decode and shows the mid-grey fallback.
    :ivar seconds: wall time of the transmission (encode, channel, decode);
        ``total_seconds`` includes loading the task KB and building the codec.
    :ivar warning: a one-line warning ("" when none), e.g. for an untrained model.
    """

    task: str
    request: str | None
    scores: dict[str, float]
    method: str
    display_name: str
    preset: str | None
    weights: str
    train_channel: str
    channel: str
    snr_db: float
    budget: str
    image: torch.Tensor
    output: torch.Tensor
    prediction: torch.Tensor | None
    picture: Image.Image
    channel_uses: int
    max_channel_uses: int
    overhead: int
    cbr: float
    psnr: float
    miou: float
    num_classes: int | None
    failed: bool
    seconds: float
    total_seconds: float
    warning: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The former name of :attr:`display_name` (deprecated)."""
        warnings.warn("TransmitResult.label is deprecated; use display_name", DeprecationWarning, stacklevel=2)
        return self.display_name

    def save(self, path: str | os.PathLike) -> Path:
        """Write :attr:`picture` to ``path`` (``.png``, ``.jpg``) atomically; returns the path."""
        return save_picture(self.picture, path)

    def lines(self) -> list[str]:
        """The report ``semsim transmit`` prints, one item per line (the warning aside)."""
        scores = ", ".join(f"{t} {s:.2f}" for t, s in sorted(self.scores.items(), key=lambda kv: -kv[1]))
        if self.request is not None:
            task = f"task: {self.task} (request {self.request!r}; similarity {scores})"
        elif self.details.get("task_given"):
            task = f"task: {self.task} (given)"
        else:
            task = f"task: {self.task} (no request; the method's task)"
        what = self.method + (f", preset {self.preset}" if self.preset else "")
        if self.details.get("mcs"):
            what += f", mcs {self.details['mcs']}"
        if self.weights:
            trained = f", trained on {self.train_channel}" if self.train_channel else ""
            state = f"weights {self.weights}{trained}"
        else:
            state = "untrained" if self.details.get("learned") else "no weights needed"
        out = [task, f"method: {self.display_name} ({what}): {state}",
               f"channel: {self.channel}, SNR {self.snr_db:g} dB",
               f"channel uses: {self.channel_uses} of {self.max_channel_uses} allowed (budget {self.budget}), "
               f"CBR {self.cbr:.4f}" + (f", overhead {self.overhead}" if self.overhead else "")]
        quality = self.details.get("quality")
        if quality is not None and not (isinstance(quality, float) and math.isnan(quality)):
            out.append(f"source: quality {quality}, {self.details['bits']:.0f} bits"
                       + ("; decoding FAILED, the receiver shows the mid-grey fallback" if self.failed else ""))
        elif quality is not None:
            out.append("source: no quality fits the budget; nothing sent, the receiver shows the mid-grey fallback")
        elif self.failed:
            out.append("decoding FAILED: the receiver shows the mid-grey fallback")
        if self.task == Task.RECONSTRUCTION.value:
            out.append(f"PSNR: {self.psnr:.2f} dB")
        elif not math.isnan(self.miou):
            out.append(f"mIoU: {self.miou:.4f} ({self.num_classes} classes, against {self.details['truth']})")
        else:
            out.append("mIoU: not computed (no ground-truth label given)")
        out.append(f"time: {self.seconds:.2f} s to transmit ({self.total_seconds:.1f} s with loading)")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines() + ([f"warning: {self.warning}"] if self.warning else []))


def _image(image: str | os.PathLike | torch.Tensor) -> torch.Tensor:
    """An image file or a ``[3, H, W]`` / ``[1, 3, H, W]`` float tensor → ``[3, H, W]`` float32 on the CPU."""
    from .data import check_image_size, load_image

    if not isinstance(image, torch.Tensor):
        return load_image(image)
    t = image.detach()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3 or not t.is_floating_point():
        raise DataError(f"image tensor must be float [3, H, W] in [0, 1], got {tuple(image.shape)} {image.dtype}")
    check_image_size(t.shape[2], t.shape[1], "the image tensor")
    if not torch.isfinite(t).all():
        raise DataError("the image tensor holds NaN or infinite values")
    return t.float().clamp(0, 1).cpu()


def _truth(truth: str | os.PathLike | torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, str]:
    """A ground-truth class map (label file or ``[H, W]`` tensor) of the image's size →
    ``([H, W] int64, a name for the report)``."""
    from .data import load_label

    if isinstance(truth, torch.Tensor):
        t, name = truth.detach().long().cpu(), "label tensor"
    else:
        t, name = load_label(truth), Path(truth).name
    if tuple(t.shape) != size:
        shape = "x".join(map(str, t.shape[::-1]))
        raise DataError(f"label {name!r} is {shape} pixels but the image is {size[1]}x{size[0]}; "
                        "they must match pixel for pixel")
    return t, name


def _channel_spec(channel: str | Mapping[str, Any]) -> dict[str, Any]:
    """A channel name, an inline YAML/JSON mapping (``"{name: rayleigh, block_length: 64}"``) or a
    mapping → ``{"name": ..., **options}``."""
    if isinstance(channel, str) and channel.lstrip().startswith("{"):
        from .scenario import parse_yaml

        try:
            channel = parse_yaml(channel, "it")
        except ConfigError as e:
            raise ConfigError(f"cannot parse the channel spec {channel[:80]!r}: {e}") from None
    name, kwargs = registry.split_spec(channel)
    return {"name": name, **kwargs}


def _task(method: str, request: str | None, task: str | None) -> tuple[Task, dict[str, float]]:
    """The task (from the request, the given task, or the method's own:
    :func:`~semsim.semantic.task_kb.parse_task`) and the KB's scores; an error naming the methods
    that serve it when ``method`` does not."""
    from .semantic.task_kb import parse_task

    serves = method_tasks(method)
    resolved, scores = parse_task(task, request, force="--task {task}")
    resolved = resolved or serves[0]
    if resolved not in serves:
        serving = [n for n in registry.names("codec") if resolved in method_tasks(n)]
        source = f"the request {request!r} resolved to" if request is not None else "the task is"
        raise ConfigError(f"method {method!r} serves {' and '.join(t.value for t in serves)} only, but {source} "
                          f"{resolved.value}; methods for {resolved.value}: {choices(serving)}")
    return resolved, scores


def _codec_spec(method: str, task: Task, preset: str | None, weights: str | os.PathLike | None,
                mcs: str | None, sampling_steps: int | None) -> dict[str, Any]:
    """The registry spec of ``method``: options it takes get their defaults (preset ``small``, the
    shipped weights, one MCS); options it does not take are passed on, for the registry to refuse."""
    params = registry.parameters("codec", method)
    spec: dict[str, Any] = {"name": method}
    if "weights" in params:
        preset = preset or DEFAULT_PRESET
        weights = weights or default_weights(method, preset)
    if "mcs" in params:
        mcs = mcs or DEFAULT_MCS
    if "task" in params:
        spec["task"] = task.value
    for key, value in (("preset", preset), ("weights", weights), ("mcs", mcs), ("sampling_steps", sampling_steps)):
        if value is not None:
            spec[key] = str(value) if key == "weights" else value
    return spec


def transmit(image: str | os.PathLike | torch.Tensor, request: str | None = None,
             channel: str | Mapping[str, Any] = "awgn", snr_db: float = 10.0, method: str | None = None, *,
             task: str | None = None, weights: str | os.PathLike | None = None, preset: str | None = None,
             budget: Budget | Mapping[str, Any] | float | str | None = None, mcs: str | None = None,
             truth: str | os.PathLike | torch.Tensor | None = None, sampling_steps: int | None = None,
             device: str = "cpu", seed: int = 0, out: str | os.PathLike | None = None,
             label: str | os.PathLike | torch.Tensor | None = None) -> TransmitResult:
    """Send one image through ``method`` over ``channel`` at ``snr_db``.

    :param image: an image file, or a ``[3, H, W]`` float tensor in [0, 1].
    :param request: free text for the task KB ("label every pixel"); the method must serve the task
        it resolves to. A task's exact name ("segmentation") is taken as ``task``. Without it (and
        without ``task``) the method's own task is used. A request the KB cannot tell apart (best two
        tasks within its margin) is refused, naming both tasks.
    :param channel: a registered channel name, a mapping ``{"name": ..., **options}`` or that
        mapping as inline YAML.
    :param snr_db: average Es/N0 in dB, within :data:`~semsim.channels.SNR_RANGE_DB`.
    :param method: a registered codec (default ``semantic``, the paper's system).
    :param task: ``"reconstruction"`` or ``"segmentation"`` instead of a request.
    :param weights: a ``.safetensors`` file from ``semsim train``; default :func:`default_weights`,
        else the model runs untrained (:attr:`TransmitResult.warning` says so).
    :param preset: architecture preset of a learned method (default ``small``).
    :param budget: channel-use cap: a :class:`Budget`, ``{"cbr": "1/16"}``, ``{"channel_uses": N}``,
        or a number / fraction string taken as CBR (default CBR 1/16); see
        :func:`~semsim.scenario.parse_budget`.
    :param mcs: the MCS of a digital method (default ``16qam-1/2``).
    :param truth: ground-truth class map (label file or ``[H, W]`` int64 tensor) for the mIoU.
    :param sampling_steps: diffusion decoder steps of ``semantic`` (default 1, the MMSE estimate).
    :param device: ``"cpu"`` or ``"cuda"``.
    :param seed: seeds the untrained weights and the channel noise.
    :param out: also write :attr:`TransmitResult.picture` there (``.png`` / ``.jpg``, atomically).
    :param label: the former name of ``truth`` (deprecated).
    :raises SemsimError: bad image, ground truth, request, channel, method, option, SNR or output path.
    """
    from .config import seed_everything, set_device

    t_start = time.perf_counter()
    if label is not None:
        if truth is not None:
            raise ConfigError("give the ground truth as truth= (label= is its former name), not both")
        warnings.warn("transmit(label=) is deprecated; pass the ground truth as truth=", DeprecationWarning,
                      stacklevel=2)
        truth = label
    # cheap checks first, so a mistake is reported before Sentence-BERT or a model loads
    if out is not None:
        check_output(out)
    snr_db = parse_snr(snr_db, "snr_db")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    method = method or DEFAULT_METHOD
    registry.lookup("codec", method)
    budget = DEFAULT_BUDGET if budget is None else parse_budget(budget, number_is_cbr=True)
    device = set_device(device)
    ch_spec = _channel_spec(channel)
    channel_obj = registry.build("channel", ch_spec)
    img = _image(image)
    h, w = img.shape[-2:]
    truth, truth_name = (None, "") if truth is None else _truth(truth, (h, w))
    if task is None and isinstance(request, str) and request.strip().lower() in {t.value for t in Task}:
        request, task = None, request.strip().lower()  # a task's own name needs no KB and cannot be ambiguous
    resolved, scores = _task(method, request, task)

    spec = _codec_spec(method, resolved, preset, weights, mcs, sampling_steps)
    seed_everything(seed)
    codec = registry.build("codec", spec, budget=budget).to(device).eval()
    check_budget_fits(codec, budget, h, w, f"this {w}x{h} image", repr(method),
                      "raise the budget or send a larger image")
    seed_everything(seed)  # the channel noise does not depend on how the codec was built
    sent = _send(codec, channel_obj, img, snr_db, resolved, device, method)
    result = _result(sent, codec, spec, img, truth, budget, request=request, scores=scores,
                     channel=spec_key(ch_spec), snr_db=snr_db)
    result.details.update(task_given=task is not None, truth=truth_name)
    result.total_seconds = time.perf_counter() - t_start
    if out is not None:
        result.save(out)
    return result


def _send(codec, channel, img: torch.Tensor, snr_db: float, task: Task, device: str, method: str):
    """:func:`~semsim.evaluate.evaluate_batch` of the one image (PSNR only); a :class:`DataError`
    when it does not fit in memory."""
    from .evaluate import evaluate_batch

    try:
        return evaluate_batch(codec, channel, img[None].to(device), None, snr_db, task=task, metrics=("psnr",))
    except (MemoryError, RuntimeError) as e:  # torch's CPU allocator raises RuntimeError
        if not isinstance(e, (MemoryError, torch.OutOfMemoryError)) and "alloc" not in str(e).lower():
            raise
        h, w = img.shape[-2:]
        raise DataError(f"not enough memory to send this {w}x{h} image through {method!r}; "
                        f"send a smaller image or lower SEMSIM_MAX_IMAGE_PIXELS") from None


def _result(sent, codec, spec: dict[str, Any], img: torch.Tensor, truth: torch.Tensor | None, budget: Budget,
            **fields: Any) -> TransmitResult:
    """The :class:`TransmitResult` of one image sent (:func:`_send`): the picture, the score, the
    bookkeeping; ``fields`` (``request``, ``scores``, ``channel``, ``snr_db``) are the caller's."""
    from .metrics import LabelSpace

    tr, method = sent.transmission, spec["name"]
    h, w = img.shape[-2:]
    output = tr.output[0].detach().float().cpu()
    prediction, p, miou, num_classes = None, math.nan, math.nan, None
    if sent.task is Task.SEGMENTATION:
        num_classes = output.shape[0]
        prediction = output.argmax(0)
        picture = overlay(img, prediction, num_classes)
        if truth is not None:
            # any label outside [0, C) is void (CamVid 11, VOC 255)
            void = (truth < 0) | (truth >= num_classes)
            cm = LabelSpace(num_classes, ignore_index=num_classes).confusion()
            cm.update(prediction[None], truth.masked_fill(void, num_classes)[None])
            miou = cm.miou()
    else:
        output = output.clamp(0, 1)
        picture = to_picture(output.permute(1, 2, 0).numpy())
        p = float(sent.scores["psnr"][0])
    learned = "weights" in registry.parameters("codec", method)
    warning = ""
    if learned and not codec.weights:
        warning = (f"{codec.display_name} ({method}, preset {spec['preset']}) is untrained: no weights given and none "
                   f"shipped, so its output is noise-level; train it with `semsim train` and pass --weights FILE")
    extra = {k: v[0] for k, v in tr.extra.items()}
    details = {"learned": learned, "mcs": extra.pop("mcs", spec.get("mcs")), "quality": extra.pop("quality", None),
               "bits": float(tr.bits[0]), **extra}
    n = int(tr.channel_uses[0])
    return TransmitResult(
        task=sent.task.value, method=method, display_name=codec.display_name,
        preset=spec.get("preset"), weights=spec["weights"] if codec.weights else "",
        train_channel=codec.train_channel, budget=budget.key,
        image=img, output=output, prediction=prediction, picture=picture, channel_uses=n,
        max_channel_uses=codec.max_channel_uses(h, w), overhead=int(tr.overhead[0]), cbr=cbr(n, h, w), psnr=p,
        miou=miou, num_classes=num_classes, failed=bool(tr.failed[0]), seconds=sent.seconds,
        total_seconds=0.0, warning=warning, details=details, **fields)


__all__ = ["TransmitResult", "default_weights", "method_tasks", "resolve_task", "transmit"]
