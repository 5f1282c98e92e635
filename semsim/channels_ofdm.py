"""3GPP TR 38.901 channels over 5G NR OFDM: TDL-A … E and CDL-A … E (Sionna 2.x blocks).

Each takes ``[B, N]`` complex64 symbols like every :class:`~semsim.channels.Channel`, maps them
onto an NR resource grid (:func:`nr_grid`: TS 38.101-1 numerology, pilots, cyclic prefix), draws
the channel per slot, estimates it (perfect or LS) and equalises (LMMSE) per resource element.
Registered names: ``tdl-a`` … ``tdl-e``, ``cdl-a`` … ``cdl-e``.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .channels import Channel, ChannelInfo, check_number, is_int
from .errors import ConfigError, choices
from .registry import register

#: valid ranges of the TDL channel's physical options (SI units, both ends included)
TDL_RANGES = {"delay_spread": (0.0, 1e-5), "carrier_frequency": (1e6, 1e11), "speed": (0.0, 1000.0),
              "subcarrier_spacing": (1e3, 1e7)}
#: valid ranges of the TDL channel's resource-grid sizes
TDL_INT_RANGES = {"fft_size": (1, 4096), "num_ofdm_symbols": (1, 140)}


TDL_MODELS = ("A", "B", "C", "D", "E")
CSI_MODES = ("perfect", "ls")
OFDM_EQUALIZERS = ("lmmse", "none")
FADING_MODES = ("continuous", "per_slot")
LS_INTERPOLATIONS = ("lin", "nn")
#: Maximum transmission bandwidth configuration N_RB, FR1, TS 38.101-1 Table 5.3.2-1:
#: {subcarrier spacing (Hz): {channel bandwidth (MHz): resource blocks}}.
NR_FR1_MAX_RB = {
    15e3: {5: 25, 10: 52, 15: 79, 20: 106, 25: 133, 30: 160, 35: 188, 40: 216, 45: 242, 50: 270},
    30e3: {5: 11, 10: 24, 15: 38, 20: 51, 25: 65, 30: 78, 35: 92, 40: 106, 45: 119, 50: 133, 60: 162,
           70: 189, 80: 217, 90: 245, 100: 273},
    60e3: {10: 11, 15: 18, 20: 24, 25: 31, 30: 38, 35: 44, 40: 51, 45: 58, 50: 65, 60: 79, 70: 93,
           80: 107, 90: 121, 100: 135},
}
#: Default numerology: a 20 MHz FR1 carrier at 30 kHz (51 RB, 612 subcarriers, FFT 1024).
DEFAULT_BANDWIDTH = 20e6


def nr_grid(bandwidth: float, subcarrier_spacing: float) -> tuple[int, int, tuple[int, int]]:
    """5G NR FR1 grid of a channel bandwidth (Hz) at a subcarrier spacing (Hz).

    :returns: ``(num_rb, fft_size, guards)``: resource blocks from TS 38.101-1 Table 5.3.2-1, the
        smallest power-of-two FFT holding their ``12 num_rb`` subcarriers, and the unused
        subcarriers (guard bands) below and above them.
    """
    if not isinstance(bandwidth, (int, float)) or not isinstance(subcarrier_spacing, (int, float)):
        raise ConfigError(f"bandwidth and subcarrier_spacing must be numbers (Hz), got {bandwidth!r}, {subcarrier_spacing!r}")
    table = NR_FR1_MAX_RB.get(float(subcarrier_spacing))
    if table is None:
        raise ConfigError(f"bandwidth needs an NR FR1 subcarrier_spacing; valid choices: "
                          f"{choices([f'{k:g}' for k in NR_FR1_MAX_RB])}")
    mhz = float(bandwidth) / 1e6
    if mhz not in table:
        raise ConfigError(f"bandwidth {bandwidth!r} Hz is not an NR FR1 channel bandwidth at "
                          f"{subcarrier_spacing:g} Hz; valid choices (MHz): {choices([str(k) for k in table])}")
    num_rb = table[mhz]
    fft_size = 1 << math.ceil(math.log2(12 * num_rb))
    unused = fft_size - 12 * num_rb
    return num_rb, fft_size, (unused // 2, unused - unused // 2)


class OFDM3GPPChannel(Channel):
    """A TR 38.901 link-level model (TDL or CDL) over OFDM: Sionna's resource grid, channel model,
    ``ApplyOFDMChannel`` (with its AWGN), LS estimator and LMMSE equaliser.

    The ``N`` data symbols of an image fill ``S = ceil(N / D)`` slots (resource grids) of
    ``num_ofdm_symbols x fft_size`` resource elements, ``D`` of them carrying data; the others carry
    pilots (whole OFDM symbols ``pilot_ofdm_symbol_indices``, Sionna's Kronecker pattern). The
    unused data elements of the last slot are left empty. Pilots, cyclic prefix and empty elements
    are reported as :attr:`ChannelInfo.overhead`; the budget counts data symbols only.

    ``fading: continuous`` (default) draws one channel realisation per image, sampled by Sionna's
    model at every OFDM symbol of its ``S`` back-to-back slots (``num_time_steps = S *
    num_ofdm_symbols`` at ``sampling_frequency = 1 / ofdm_symbol_duration``), so the channel evolves
    with the Doppler of ``speed`` across the image (time correlation ``J0(2 pi f_D dt)``);
    ``fading: per_slot`` draws every slot independently. Sionna normalises the power-delay profile
    to unit energy, so ``E|h|^2 = 1`` on average over realisations; each slot's own energy fades
    (``normalize_channel: true`` scales every slot to unit energy instead, removing that slow fading).

    Subclasses build the Sionna model in :meth:`_make_model`.

    :param delay_spread: RMS delay spread in seconds, 0 to 10 µs (default 100 ns).
    :param carrier_frequency: Hz, 1 MHz to 100 GHz (default 3.5 GHz).
    :param speed: UT speed in m/s, 0 to 1000 (default 3).
    :param fading: ``"continuous"`` (default) or ``"per_slot"``.
    :param bandwidth: NR FR1 channel bandwidth in Hz (default 20 MHz when ``fft_size`` is not
        given): the resource blocks come from TS 38.101-1 Table 5.3.2-1 (:func:`nr_grid`), the FFT
        is the smallest power of two holding them, the rest are guard bands.
    :param fft_size: subcarriers per OFDM symbol, 1 to 4096, all of them used (the explicit
        alternative to ``bandwidth``).
    :param subcarrier_spacing: Hz, 1 kHz to 10 MHz (default 30 kHz).
    :param num_ofdm_symbols: OFDM symbols per slot, 1 to 140 (default 14).
    :param cyclic_prefix_length: samples per OFDM symbol (default: NR's normal cyclic prefix,
        144/2048 of the FFT size: 72 at 1024, 9 at 128).
    :param pilot_ofdm_symbol_indices: OFDM symbols carrying pilots (default ``[2, 11]``).
    :param csi: ``"perfect"`` or ``"ls"`` (least-squares on the pilots).
    :param ls_interpolation: ``"lin"`` (default; Sionna's linear interpolation across the pilots
        in frequency and time, which follows a channel that evolves within the slot) or ``"nn"``
        (nearest pilot).
    :param equalizer: ``"lmmse"`` (Sionna's ``LMMSEEqualizer``) or ``"none"`` (raw received data
        elements, with the CSI in :attr:`ChannelInfo.h`).
    :param normalize_channel: scale each slot's channel to unit energy (default ``False``).
    """

    family = "ofdm"

    def __init__(self, model: str = "A", delay_spread: float = 100e-9, carrier_frequency: float = 3.5e9,
                 speed: float = 3.0, fading: str = "continuous", bandwidth: float | None = None,
                 fft_size: int | None = None, subcarrier_spacing: float = 30e3, num_ofdm_symbols: int = 14,
                 cyclic_prefix_length: int | None = None,
                 pilot_ofdm_symbol_indices: tuple[int, ...] | list[int] = (2, 11),
                 csi: str = "perfect", ls_interpolation: str = "lin", equalizer: str = "lmmse",
                 normalize_channel: bool = False):
        super().__init__()
        fam = self.family
        if ls_interpolation not in LS_INTERPOLATIONS:
            raise ConfigError(f"{fam}: unknown ls_interpolation {ls_interpolation!r}; valid choices: "
                              f"{choices(LS_INTERPOLATIONS)}")
        if fft_size is not None and bandwidth is not None:
            raise ConfigError(f"{fam}: give bandwidth (an NR grid) or fft_size (every subcarrier used), not both")
        num_rb, guards = None, (0, 0)
        if fft_size is None:
            bandwidth = DEFAULT_BANDWIDTH if bandwidth is None else bandwidth
            num_rb, fft_size, guards = nr_grid(bandwidth, subcarrier_spacing)
        if cyclic_prefix_length is None and isinstance(fft_size, int):
            cyclic_prefix_length = fft_size * 144 // 2048
        if not isinstance(normalize_channel, bool):
            raise ConfigError(f"{fam}: normalize_channel must be true or false, got {normalize_channel!r}")
        if model not in TDL_MODELS:
            raise ConfigError(f"unknown {fam.upper()} model {model!r}; valid choices: {choices(TDL_MODELS)}")
        if csi not in CSI_MODES:
            raise ConfigError(f"{fam}: unknown csi {csi!r}; valid choices: {choices(CSI_MODES)}")
        if equalizer not in OFDM_EQUALIZERS:
            raise ConfigError(f"{fam}: unknown equalizer {equalizer!r}; valid choices: {choices(OFDM_EQUALIZERS)}")
        if fading not in FADING_MODES:
            raise ConfigError(f"{fam}: unknown fading {fading!r}; valid choices: {choices(FADING_MODES)}")
        for key, val in (("fft_size", fft_size), ("num_ofdm_symbols", num_ofdm_symbols)):
            lo, hi = TDL_INT_RANGES[key]
            if not is_int(val) or not lo <= val <= hi:
                raise ConfigError(f"{fam}: {key} must be a positive integer in [{lo}, {hi}], got {val!r}")
        if not is_int(cyclic_prefix_length) or not 0 <= cyclic_prefix_length < fft_size:
            raise ConfigError(f"{fam}: cyclic_prefix_length must be an integer in [0, fft_size), got {cyclic_prefix_length!r}")
        pilots = list(pilot_ofdm_symbol_indices) if isinstance(pilot_ofdm_symbol_indices, (list, tuple)) else []
        if (not pilots or len(set(pilots)) < len(pilots)
                or any(not is_int(p) or not 0 <= p < num_ofdm_symbols for p in pilots)):
            raise ConfigError(f"{fam}: pilot_ofdm_symbol_indices must be indices in [0, {num_ofdm_symbols}), got {pilots!r}")
        for key, val in (("delay_spread", delay_spread), ("carrier_frequency", carrier_frequency),
                         ("speed", speed), ("subcarrier_spacing", subcarrier_spacing)):
            check_number(val, f"{fam}: {key}", *TDL_RANGES[key])
        if len(pilots) >= num_ofdm_symbols:
            raise ConfigError(f"{fam}: pilot_ofdm_symbol_indices {pilots} leave no OFDM symbol for data")
        self.name = f"{fam}-{model.lower()}"
        self.model, self.csi, self.equalizer, self.fading = model, csi, equalizer, fading
        self.ls_interpolation = ls_interpolation
        self.params = dict(delay_spread=float(delay_spread), carrier_frequency=float(carrier_frequency),
                           speed=float(speed), bandwidth=None if bandwidth is None else float(bandwidth),
                           num_rb=num_rb, fft_size=fft_size, subcarrier_spacing=float(subcarrier_spacing),
                           num_ofdm_symbols=num_ofdm_symbols, cyclic_prefix_length=cyclic_prefix_length,
                           pilot_ofdm_symbol_indices=pilots, normalize_channel=normalize_channel)

        from sionna.phy.channel import ApplyOFDMChannel, subcarrier_frequencies
        from sionna.phy.mimo import StreamManagement
        from sionna.phy.ofdm import (LMMSEEqualizer, LSChannelEstimator, RemoveNulledSubcarriers,
                                     ResourceGrid, ResourceGridDemapper, ResourceGridMapper)

        self.rg = ResourceGrid(num_ofdm_symbols=num_ofdm_symbols, fft_size=fft_size,
                               subcarrier_spacing=float(subcarrier_spacing), num_tx=1,
                               num_streams_per_tx=1, cyclic_prefix_length=cyclic_prefix_length,
                               num_guard_carriers=guards, pilot_pattern="kronecker",
                               pilot_ofdm_symbol_indices=pilots)
        sm = StreamManagement(np.ones([1, 1], dtype=int), 1)
        self._model = self._make_model()
        self._frequencies = subcarrier_frequencies(fft_size, float(subcarrier_spacing))
        self._apply_ofdm = ApplyOFDMChannel()
        self._rg_map = ResourceGridMapper(self.rg)
        self._rg_demap = ResourceGridDemapper(self.rg, sm)
        self._remove_nulled = RemoveNulledSubcarriers(self.rg)
        self._ls = LSChannelEstimator(self.rg, interpolation_type=ls_interpolation)
        self._lmmse = LMMSEEqualizer(self.rg, sm)

    def _make_model(self):
        """The Sionna channel model (called once ``self.model`` and ``self.params`` are set)."""
        raise NotImplementedError

    @property
    def data_per_slot(self) -> int:
        return int(self.rg.num_data_symbols)

    def overhead(self, num_symbols):
        """Resource elements of the occupied band (guard bands excluded) and its share of the cyclic
        prefix, per image, less the data symbols."""
        p = self.params
        slots = -(-num_symbols // self.data_per_slot)
        used = int(self.rg.num_effective_subcarriers)
        grid = slots * p["num_ofdm_symbols"] * used
        cp = slots * p["num_ofdm_symbols"] * p["cyclic_prefix_length"] * used / p["fft_size"]
        return grid + round(cp) - num_symbols

    def generate(self, batch_size: int, num_slots: int) -> torch.Tensor:
        """Channel frequency responses of ``num_slots`` slots for each of ``batch_size`` images.

        :output h_freq: ``[batch_size * num_slots, 1, R, 1, T_ant, num_ofdm_symbols, fft_size]``
            complex64 (Sionna's layout; ``R``/``T_ant`` receive/transmit antennas), image-major:
            slot ``s`` of image ``i`` is row ``i * num_slots + s``. With ``fading: continuous`` the
            slots of an image are consecutive pieces of one realisation.
        """
        from sionna.phy.channel import cir_to_ofdm_channel

        t = self.params["num_ofdm_symbols"]
        fs = 1.0 / self.rg.ofdm_symbol_duration
        if self.fading == "per_slot":
            a, tau = self._model(batch_size * num_slots, t, fs)
            h = cir_to_ofdm_channel(self._frequencies.to(a.device), a, tau)
        else:
            a, tau = self._model(batch_size, num_slots * t, fs)
            h = cir_to_ofdm_channel(self._frequencies.to(a.device), a, tau)
            shape = h.shape  # [B, 1, R, 1, Ta, S*T, F] -> [B*S, 1, R, 1, Ta, T, F]
            h = h.reshape(*shape[:5], num_slots, t, shape[-1]).movedim(5, 1)
            h = h.reshape(batch_size * num_slots, *shape[1:5], t, shape[-1])
        if self.params["normalize_channel"]:
            energy = h.abs().square().mean(dim=(2, 4, 5, 6), keepdim=True)
            h = h / torch.sqrt(energy.clamp_min(1e-20)).to(h.dtype)
        return h

    def _data_elements(self, grid: torch.Tensor) -> torch.Tensor:
        """``[S, 1, 1, T, F]`` grid (``F``: all ``fft_size`` subcarriers, or only the effective
        ones, as Sionna's estimators return) → ``[S, D]`` data elements."""
        if grid.shape[-1] != self.params["fft_size"]:
            ind = torch.as_tensor(self.rg.effective_subcarrier_ind, device=grid.device)
            grid = grid.new_zeros(*grid.shape[:-1], self.params["fft_size"]).index_copy(-1, ind, grid)
        return self._rg_demap(grid).reshape(grid.shape[0], -1)

    def propagate(self, x, no, snr_db):
        b, n = x.shape
        d = self.data_per_slot
        slots = -(-n // d)
        data = torch.cat([x, x.new_zeros(b, slots * d - n)], dim=1).reshape(b * slots, 1, 1, d)
        no_slot = no.repeat_interleave(slots)
        h_freq = self.generate(b, slots).to(x.device)
        y_grid = self._apply_ofdm(self._rg_map(data), h_freq, no_slot)
        # h_freq: [S, 1, 1, 1, 1, T, F] (rx, rx_ant, tx, tx_ant)
        if self.csi == "perfect":  # the equaliser takes the effective subcarriers, as LS returns them
            h_hat, err_var = self._remove_nulled(h_freq), torch.zeros((), device=x.device)
        else:
            h_hat, err_var = self._ls(y_grid, no_slot)

        def per_image(t):
            return t.reshape(b, slots * d)[:, :n]

        overhead = self.overhead(n)
        h_report = h_hat
        if h_hat.shape[2] > 1:  # several receive antennas: the gain after combining
            h_report = h_hat.abs().square().sum(dim=2, keepdim=True).sqrt().to(h_hat.dtype)
        h_data = per_image(self._data_elements(h_report.reshape(b * slots, 1, 1, *h_hat.shape[-2:])))
        if self.equalizer == "lmmse":
            x_hat, no_eff = self._lmmse(y_grid, h_hat, err_var, no_slot)
            return per_image(x_hat), ChannelInfo(no=per_image(no_eff.to(torch.float32)), h=h_data,
                                                 equalized=True, overhead=overhead)
        y = per_image(self._data_elements(y_grid))
        return y, ChannelInfo(no=no.unsqueeze(-1).expand(b, n).contiguous(), h=h_data,
                              equalized=False, overhead=overhead)

    def sample_gains(self, num):
        from sionna.phy import config as sionna_config

        state = sionna_config.torch_rng().get_state()
        sionna_config.torch_rng().manual_seed(1234)
        try:
            slots = max(1, -(-num // self.data_per_slot))
            h = self.generate(slots, 1)  # independent slots: the marginal distribution of h
            return self._data_elements(h.reshape(slots, 1, 1, *h.shape[-2:])).reshape(-1)[:num].cpu()
        finally:
            sionna_config.torch_rng().set_state(state)

    def describe(self):
        return {"name": self.name, "fading": self.fading, "csi": self.csi,
                "ls_interpolation": self.ls_interpolation, "equalizer": self.equalizer, **self.params}


class TDLOFDMChannel(OFDM3GPPChannel):
    """3GPP TR 38.901 TDL-A … E (Sionna's ``TDL``, single antenna) over OFDM.

    Options as :class:`OFDM3GPPChannel`; ``model`` is the TDL profile ``"A"`` … ``"E"``.
    """

    family = "tdl"

    def _make_model(self):
        from sionna.phy.channel.tr38901 import TDL

        p = self.params
        return TDL(self.model, delay_spread=p["delay_spread"], carrier_frequency=p["carrier_frequency"],
                   min_speed=p["speed"], max_speed=p["speed"])


for _m in TDL_MODELS:
    register("channel", f"tdl-{_m.lower()}", model=_m)(TDLOFDMChannel)


ARRAY_DEFAULTS = dict(num_rows_per_panel=1, num_cols_per_panel=1, polarization="single",
                      polarization_type="V", antenna_pattern="omni")
CDL_DIRECTIONS = ("downlink", "uplink")


class CDLOFDMChannel(OFDM3GPPChannel):
    """3GPP TR 38.901 CDL-A … E (Sionna's ``CDL``) over OFDM, one stream.

    Options as :class:`OFDM3GPPChannel`, plus the antenna arrays. Both ends default to one
    vertically polarised omnidirectional element, so CDL-A/B/C (NLOS) fade like Rayleigh and
    CDL-D/E (LOS) like Rician in the limit of a tiny delay spread, with K = 8.98 and 9.27 dB: the
    specular path over all NLOS clusters of TR 38.901 Tables 7.7.1-4/5 (the tables' nominal 13.3 and
    22 dB count only the first NLOS cluster). The
    transmitter must have a single antenna (no precoding); a receiver with several antennas
    combines them in the LMMSE equaliser, and :attr:`ChannelInfo.h` then holds the combined gain
    ``sqrt(sum_r |h_r|^2)``.

    :param ut_array: options of Sionna's ``PanelArray`` for the UT (``num_rows_per_panel``,
        ``num_cols_per_panel``, ``polarization``, ``polarization_type``, ``antenna_pattern``
        ``"omni"``/``"38.901"``, ``num_rows``, ``num_cols``, spacings); missing keys take
        ``ARRAY_DEFAULTS`` (one omnidirectional V element).
    :param bs_array: the same for the base station.
    :param direction: ``"downlink"`` (default, the BS transmits) or ``"uplink"``.
    """

    family = "cdl"

    def __init__(self, model: str = "A", ut_array: Mapping[str, Any] | None = None,
                 bs_array: Mapping[str, Any] | None = None, direction: str = "downlink", **kwargs):
        if direction not in CDL_DIRECTIONS:
            raise ConfigError(f"cdl: unknown direction {direction!r}; valid choices: {choices(CDL_DIRECTIONS)}")
        arrays = {}
        for key, val in (("ut_array", ut_array), ("bs_array", bs_array)):
            if val is not None and not isinstance(val, Mapping):
                raise ConfigError(f"cdl: {key} must be a mapping of PanelArray options, got {val!r}")
            arrays[key] = {**ARRAY_DEFAULTS, **(val or {})}
        self.arrays, self.direction = arrays, direction
        super().__init__(model=model, **kwargs)
        tx_ant = self._model._tx_array.num_ant
        if tx_ant != 1:
            raise ConfigError(f"cdl: the transmitter ({'bs' if direction == 'downlink' else 'ut'}_array) "
                              f"must have one antenna (no precoding), got {tx_ant}")
        self.num_rx_ant = int(self._model._rx_array.num_ant)
        if self.num_rx_ant > 1 and self.equalizer != "lmmse":
            raise ConfigError("cdl: a receiver with several antennas needs equalizer: lmmse")

    def _make_model(self):
        from sionna.phy.channel.tr38901 import CDL, PanelArray

        p = self.params
        try:
            ut, bs = [PanelArray(carrier_frequency=p["carrier_frequency"], **self.arrays[k])
                      for k in ("ut_array", "bs_array")]
        except (TypeError, ValueError) as e:
            raise ConfigError(f"cdl: bad antenna array options {self.arrays}: {e}") from e
        return CDL(self.model, delay_spread=p["delay_spread"], carrier_frequency=p["carrier_frequency"],
                   ut_array=ut, bs_array=bs, direction=self.direction,
                   min_speed=p["speed"], max_speed=p["speed"])

    def describe(self):
        return {**super().describe(), **self.arrays, "direction": self.direction}


def _with_base_options(cls: type, base: type) -> type:
    """Give ``cls`` (whose ``__init__`` passes ``**kwargs`` to ``base``) the signature of both, so
    the registry checks, lists and resolves every option."""
    own = [p for p in inspect.signature(cls.__init__).parameters.values()
           if p.name != "self" and p.kind != p.VAR_KEYWORD]
    names = {p.name for p in own}
    inherited = [p for p in inspect.signature(base.__init__).parameters.values()
                 if p.name != "self" and p.name not in names]
    cls.__signature__ = inspect.Signature([p.replace(kind=p.KEYWORD_ONLY) for p in own + inherited])
    return cls


_with_base_options(CDLOFDMChannel, OFDM3GPPChannel)
for _m in TDL_MODELS:
    register("channel", f"cdl-{_m.lower()}", model=_m)(CDLOFDMChannel)
