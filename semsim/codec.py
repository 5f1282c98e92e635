"""The codec contract every transmission method honours, and the channel-use budget.

A codec maps images to complex channel symbols and received symbols back to an image (or to class
logits, for segmentation)::

    symbols = codec.encode(images, snr_db)            # [B, N] complex64
    y, info = channel(symbols, snr_db)                 # power normalised inside the channel
    output  = codec.decode(y, info, snr_db, image_size=(H, W))

:meth:`Codec.transmit` runs that chain and returns a :class:`Transmission` with the per-image
bookkeeping the runner writes to the CSV. Methods that do more than one channel call per image
(the digital chain) or none (the capacity bound) override :meth:`Codec.transmit`.

The budget (:class:`~semsim.budget.Budget`, a cap on complex channel uses per image) and the task
live in :mod:`semsim.budget`, re-exported here.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import torch

from .budget import Budget, Task, cbr, parse_ratio  # noqa: F401  (the contract's types, re-exported)
from .errors import BudgetError, ConfigError
from .presets import load_preset, preset_file, weights_file
from .typed import from_mapping


@dataclass
class Transmission:
    """The outcome of sending one batch through a channel.

    :ivar output: ``[B, 3, H, W]`` float in [0, 1] (reconstruction) or ``[B, C, H, W]`` logits
        (segmentation), at the original image size.
    :ivar channel_uses: ``[B]`` data symbols actually sent per image.
    :ivar overhead: ``[B]`` extra channel uses per image (pilots, cyclic prefix), not in the budget.
    :ivar bits: ``[B]`` source bits per image (digital methods), else NaN.
    :ivar failed: ``[B]`` bool, True where the receiver could not decode and used the fallback.
    :ivar extra: further per-image columns, name → list of length B (e.g. ``bler``).
    """

    output: torch.Tensor
    channel_uses: list[int]
    overhead: list[int]
    bits: list[float]
    failed: list[bool]
    extra: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class CodecOutput:
    """What :meth:`Codec.forward` returns (as CompressAI's models return ``x_hat`` with what the loss
    needs; the loss is :func:`semsim.nn.losses.training_loss`): ``output`` as :meth:`Codec.decode`
    gives it (detached image, or logits), ``prediction`` what the loss scores (image, logits, or the
    diffusion decoder's ``x0`` in [-1, 1]) and ``target`` on its scale (None: segmentation labels)."""

    output: torch.Tensor
    prediction: torch.Tensor
    target: torch.Tensor | None = None


class Codec(torch.nn.Module):
    """Base of every transmission method.

    Class attributes a subclass sets:

    - ``task``: :class:`Task`.
    - ``axes``: sweep axes besides SNR, e.g. ``("mcs",)`` for a digital chain; ``()`` for analog
      JSCC (no modulation axis).
    - ``display_name``: the method name shown in tables and plots ("Deep JSCC").

    :param budget: the channel-use cap per image, shared by every method in a comparison.
    """

    task: ClassVar[Task] = Task.RECONSTRUCTION
    axes: ClassVar[tuple[str, ...]] = ()
    display_name: str = "codec"
    #: rough CPU cost in seconds per megapixel per SNR point, for ``semsim validate`` estimates.
    cost_s_per_mpixel: ClassVar[float] = 1.0

    def __init__(self, budget: Budget):
        super().__init__()
        self.budget = budget

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("label"), str):  # a plugin written before the rename
            warnings.warn(f"{cls.__name__}.label is deprecated; name the method with display_name",
                          DeprecationWarning, stacklevel=2)
            cls.display_name = cls.__dict__["label"]

    @property
    def label(self) -> str:
        """The former name of :attr:`display_name` (deprecated: "label" is the ground-truth class map)."""
        warnings.warn("Codec.label is deprecated; use display_name", DeprecationWarning, stacklevel=2)
        return self.display_name

    # --- the contract -------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` float in [0, 1] and ``[B]`` SNR (dB, average, known at the Tx)
        → ``[B, N]`` complex64 channel symbols (any scale; the channel normalises power)."""
        raise NotImplementedError

    def decode(self, received: torch.Tensor, info, snr_db: torch.Tensor,
               image_size: tuple[int, int]) -> torch.Tensor:
        """``[B, N]`` received symbols, :class:`~semsim.channels.ChannelInfo`, ``[B]`` SNR in dB
        and the original ``(H, W)`` (an out-of-band header) → image ``[B, 3, H, W]`` in [0, 1] or
        logits ``[B, C, H, W]``."""
        raise NotImplementedError

    # --- budget -------------------------------------------------------------------------------
    def max_channel_uses(self, height: int, width: int) -> int:
        return self.budget.channel_uses(height, width)

    def min_channel_uses(self, height: int, width: int) -> int:
        """The fewest symbols this codec can send for such an image (for budget validation)."""
        return 1

    def check_budget(self, channel_uses: int, height: int, width: int) -> None:
        cap = self.max_channel_uses(height, width)
        if channel_uses > cap:
            raise BudgetError(f"method {self.display_name!r} would use {channel_uses} channel uses for a "
                              f"{height}x{width} image, above the budget {self.budget.key} "
                              f"(cap {cap}); lower its rate or raise the budget")

    # --- the runner's entry point --------------------------------------------------------------
    def transmit(self, images: torch.Tensor, channel, snr_db: torch.Tensor) -> Transmission:
        """encode → budget check → channel → decode, for a batch of same-size images."""
        b, _, h, w = images.shape
        x = self.encode(images, snr_db)
        self.check_budget(x.shape[1], h, w)
        y, info = channel(x, snr_db)
        out = self.decode(y, info, snr_db, image_size=(h, w))
        return Transmission(output=out, channel_uses=[x.shape[1]] * b, overhead=[info.overhead] * b,
                            bits=[float("nan")] * b, failed=[False] * b)

    def sweep_values(self) -> dict[str, list[Any]]:
        """Values of each axis in :attr:`axes` this codec sweeps (e.g. ``{"mcs": [...]}``)."""
        return {}

    def with_axes(self, **point: Any) -> "Codec":
        """This codec set to one value of each axis (digital codecs: one MCS)."""
        if point:
            raise ConfigError(f"method {self.display_name!r} has no sweep axes; got {sorted(point)}")
        return self

    # --- learned codecs ------------------------------------------------------------------------
    #: whether ``semsim train`` can train this codec (learned codecs set True)
    trainable: ClassVar[bool] = False
    #: the channel the loaded weights were trained on ("" when untrained or not learned)
    train_channel: str = ""
    #: whether training sends through the channel (False: e.g. an FCN trained on clean images, whose
    #: weights then name no training channel)
    channel_in_training: ClassVar[bool] = True

    @property
    def tasks(self) -> tuple[Task, ...]:
        """Tasks this codec's parameters serve; ``semsim train`` draws one batch per task per step."""
        return (self.task,)

    def forward(self, task: Task, images: torch.Tensor, channel, snr_db: torch.Tensor) -> CodecOutput:
        """One differentiable pass of ``images`` (``[B, 3, H, W]`` in [0, 1], random crops) for
        ``task`` through ``channel`` at ``snr_db`` (``[B]`` float32): what learned codecs implement."""
        raise NotImplementedError(f"method {self.display_name!r} is not trainable")

    def training_step(self, task: Task, images: torch.Tensor, labels: torch.Tensor | None, channel,
                      snr_db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What ``semsim train`` calls per task and batch: :meth:`forward`, then the loss outside the
        model (:func:`~semsim.nn.losses.training_loss`; ``labels`` ``[B, H, W]`` int64 or None).
        A codec without :meth:`forward` may override it. Returns the loss and ``output``."""
        from .nn.losses import training_loss

        out = self(Task(task), images, channel, snr_db)
        return training_loss(out, labels, getattr(self, "num_classes", None)), out.output

    def configure_training(self, **options: Any) -> None:
        """Method-specific training options of a recipe (``per_method`` in a ``kind: train``
        scenario); a codec that takes none refuses any. Overridden by codecs with such options."""
        if options:
            raise ConfigError(f"method {self.display_name!r} takes no training options; got {sorted(options)}")

    def shared_modules(self) -> dict[str, torch.nn.Module]:
        """Modules that several tasks train (their per-task gradient norms go to ``curve.csv``)."""
        return {}

    @classmethod
    def preset_names(cls) -> list[str]:
        """Named architecture presets (``small``, ``paper``) a learned codec can be built with;
        each must build with ``meta=True`` on PyTorch's meta device for ``semsim info``."""
        return []

    def config(self) -> dict[str, Any]:
        """The architecture as plain data; saved beside the weights and checked when loading."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {"label": self.display_name, "task": self.task.value, "weights": ""}

    @property
    def weights(self) -> str:
        """Name of the weights file this codec loaded, or "" for methods without weights."""
        return ""


@dataclass(frozen=True)
class SymbolPolicy:
    """How many symbols a learned codec sends in one training batch (``semsim train``'s ``symbols``).

    With probability ``at_budget`` the batch sends what the evaluated budget allows
    (``min(cap, latent)``); otherwise ``round(f · cap)`` symbols with ``f`` uniform in
    ``[low, high]`` (fractions of the budget's cap ``cap``; ``high > 1`` trains the latent channels
    that only larger budgets send), clipped to ``[1, latent]``. Every learned codec of a training
    scenario uses the same policy, so comparisons differ only in the method. Draws come from
    torch's global generator (seeded per step).

    The default (``0.5, 0.25, 1.0``) is the policy of the first shipped weights: half the batches
    at the budget, the rest uniform in ``[cap/4, cap]``.
    """

    at_budget: float = 0.5
    low: float = 0.25
    high: float = 1.0

    def __post_init__(self):
        if not (0.0 <= self.at_budget <= 1.0 and 0.0 < self.low <= self.high and math.isfinite(self.high)):
            raise ConfigError(f"symbols needs at_budget in [0, 1] and 0 < low <= high (finite), got "
                              f"at_budget={self.at_budget!r}, low={self.low!r}, high={self.high!r}")

    def draw(self, cap: int, latent: int) -> int:
        """Symbols for one batch: ``cap`` channel uses allowed by the budget, ``latent`` the most the
        codec's latent holds for this crop."""
        if torch.rand(()) >= self.at_budget:
            f = self.low + (self.high - self.low) * float(torch.rand(()))
            return max(1, min(latent, round(f * cap)))
        return max(1, min(cap, latent))

    def serves(self, budget: Budget) -> str:
        """The budgets a model trained with this policy at ``budget`` has seen, in words."""
        lo, hi = (self.low, self.high) if self.at_budget < 1 else (1.0, 1.0)
        if budget.kind == "cbr":
            f = lambda v: str(Fraction(v * budget.value).limit_denominator(1000))  # noqa: E731
            return f"cbr {f(min(lo, 1.0))} to {f(max(hi, 1.0))} (mostly {f(1.0)})"
        return f"{round(min(lo, 1.0) * budget.value)} to {round(max(hi, 1.0) * budget.value)} channel uses"


class LearnedCodec(Codec):
    """Base of codecs with weights: a preset (architecture as data) built by :meth:`_build`, on
    PyTorch's meta device if asked, then weights written by ``semsim train``.

    A subclass sets ``presets_file`` and ``preset_type`` (a dataclass: each preset is read into
    it at load time, so a misspelt key fails there, named) and implements :meth:`_build`, which
    gets that typed preset; ``method`` (its key in ``presets_file``) is the name ``@register``
    gives it. A preset with a ``num_classes`` key makes a segmentation-capable codec whose class
    count the dataset (or the weights) can override. ``cfg`` keeps the preset as plain data (what
    :meth:`config` saves beside the weights); ``arch`` is the same as the typed preset.

    :param budget: channel-use cap per image.
    :param preset: a preset name (``small``, ``paper``).
    :param weights: ``"pretrained"`` (the shipped weights of this method and preset), a
        ``.safetensors`` file written by ``semsim train``, or the name of shipped weights
        (``semsim/pretrained/manifest.json``, sha256-checked); checked against the preset, and its
        class count is taken when ``num_classes`` is not given.
    :param meta: build on PyTorch's meta device (parameter counting only; nothing is allocated).
    :param num_classes: segmentation classes (default: the weights', else the preset's).
    """

    trainable = True
    method: ClassVar[str] = ""
    presets_file: ClassVar[Path | None] = None
    #: the dataclass a preset is read into (None: ``_build`` gets the plain dict)
    preset_type: ClassVar[type | None] = None
    #: the training symbol-count policy (``semsim train`` sets the scenario's ``symbols``)
    symbol_policy: SymbolPolicy = SymbolPolicy()

    def __init__(self, budget: Budget, preset: str = "small", weights: str | None = None, meta: bool = False,
                 num_classes: int | None = None):
        super().__init__(budget)
        cfg = load_preset(self.presets_file, self.method, preset)
        weights_path = weights_file(self.method, preset, weights) if weights else None
        if num_classes is None and weights_path and "num_classes" in cfg:
            from .weights import read_meta

            num_classes = read_meta(weights_path).get("config", {}).get("num_classes")
        if num_classes is not None:
            if "num_classes" not in cfg:
                raise ConfigError(f"method {self.method!r} does not segment; it takes no num_classes")
            if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
                raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")
            cfg["num_classes"] = num_classes
        self.preset_name, self.cfg = preset, cfg
        self.arch = cfg if self.preset_type is None else from_mapping(
            self.preset_type, cfg, f"{self.method} preset {preset!r} ({Path(self.presets_file).name})")
        self._weights_name, self.weights_sha256 = "", ""
        with torch.device("meta") if meta else contextlib.nullcontext():
            self._build(self.arch)
        if weights_path:
            from .weights import load_weights

            load_weights(self, weights_path)
            self._weights_name = weights_path.name

    def _build(self, cfg: Any) -> None:
        """Build the modules from the preset (a :attr:`preset_type` instance, or the dict)."""
        raise NotImplementedError

    def upgrade_weights(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
                        ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Weights saved by an older semsim (``meta`` their metadata, ``tensors`` their state dict),
        made to fit this codec without changing what they compute, as ``(config, tensors)``;
        :func:`semsim.weights.load_weights` then checks the config and shapes as usual. The default
        changes nothing; a codec whose preset gained a key overrides it."""
        return meta["config"], tensors

    def training_symbols(self, height: int, width: int, latent: int) -> int:
        """Symbols to send for a training batch of ``height x width`` crops whose latent holds
        ``latent`` symbols, drawn by :attr:`symbol_policy`."""
        return self.symbol_policy.draw(self.budget.channel_uses(height, width), latent)

    @classmethod
    def preset_names(cls) -> list[str]:
        return list(preset_file(cls.presets_file)[cls.method])

    @property
    def num_classes(self) -> int | None:
        """Segmentation classes, or None for a reconstruction-only codec."""
        n = self.cfg.get("num_classes")
        return None if n is None else int(n)

    @property
    def weights(self) -> str:
        return self._weights_name

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "preset": self.preset_name, **self.cfg}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "weights": self.weights, "preset": self.preset_name,
                "train_channel": self.train_channel}


# --- helpers for analog (JSCC) codecs ----------------------------------------------------------
def latent_to_symbols(z: torch.Tensor, n: int) -> torch.Tensor:
    """``[B, 2C, h, w]`` real latent → the first ``n`` of its ``C h w`` complex symbols, ``[B, n]``.

    Channel ``c`` and ``c + C`` are the real and imaginary parts of complex channel ``c``; symbols
    are ordered channel-major, so a smaller ``n`` sends the leading channels whole.
    """
    b, c2, h, w = z.shape
    if c2 % 2:
        raise ValueError(f"a latent needs an even channel count (real/imaginary pairs), got {c2}")
    z = z.float()
    symbols = torch.complex(z[:, : c2 // 2], z[:, c2 // 2:]).reshape(b, -1)
    if not 0 < n <= symbols.shape[1]:
        raise ValueError(f"cannot send {n} symbols from a latent of {symbols.shape[1]}")
    return symbols[:, :n]


def received_planes(received: torch.Tensor, info, snr_db: torch.Tensor, channels: int, height: int,
                    width: int) -> torch.Tensor:
    """Received symbols back on the latent grid, with what the receiver knows, as real planes.

    :param received: ``[B, n]`` complex, ``n <= channels * height * width`` (channel-major order).
    :param info: the channel's :class:`~semsim.channels.ChannelInfo`.
    :param snr_db: ``[B]`` float, Es/N0 in dB.
    :returns: ``[B, 6 C + 1, height, width]`` float32: ``y`` real and imaginary (zero where not
        sent), ``h`` real and imaginary (1 without CSI), a mask of sent symbols, ``log10 no`` per
        symbol (0 where not sent) and ``snr_db / 20``.
    """
    b, n = received.shape
    total = channels * height * width
    if n > total:
        raise ValueError(f"received {n} symbols, more than the {total} the latent grid holds")

    def grid(v: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        out = torch.full((b, total), fill, dtype=v.dtype, device=received.device)
        out[:, :n] = v
        return out.reshape(b, channels, height, width)

    y = grid(received.to(torch.complex64))
    h = grid(info.h.to(torch.complex64), 1.0) if info.h is not None else torch.ones_like(y)
    mask = grid(torch.ones(b, n, device=received.device))
    log_no = grid(torch.log10(info.no.float().clamp_min(1e-10)).expand(b, n))
    snr = (torch.as_tensor(snr_db, dtype=torch.float32, device=received.device).reshape(-1, 1, 1, 1)
           .expand(b, 1, height, width) / 20.0)
    return torch.cat([y.real, y.imag, h.real, h.imag, mask, log_no, snr], dim=1)


#: the ``C``-wide plane groups of :func:`received_planes`, in order (the SNR plane follows them)
PLANE_GROUPS = ("y_real", "y_imag", "h_real", "h_imag", "mask", "log_no")


def select_planes(planes: torch.Tensor, channels: int, *groups: str) -> torch.Tensor:
    """The named ``C``-wide groups of :func:`received_planes`' output, concatenated in the order asked.

    :param planes: ``[B, 6 C + 1, h, w]`` from :func:`received_planes`.
    :param groups: names from :data:`PLANE_GROUPS` (``"y_real", "y_imag", "mask"`` for a decoder
        that sees the received symbols and which of them were sent).
    :returns: ``[B, len(groups) * C, h, w]``.
    """
    unknown = [g for g in groups if g not in PLANE_GROUPS]
    if unknown:
        raise ValueError(f"unknown plane group(s) {unknown}; valid: {', '.join(PLANE_GROUPS)}")
    idx = [PLANE_GROUPS.index(g) for g in groups]
    return torch.cat([planes[:, i * channels:(i + 1) * channels] for i in idx], dim=1)


def received_plane_count(channels: int) -> int:
    """Planes of :func:`received_planes` for ``channels`` complex channels: ``6 C + 1``."""
    return 6 * channels + 1
