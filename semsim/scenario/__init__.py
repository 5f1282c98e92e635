"""Scenario files: schema, validation and the sweep's points.

A scenario is a YAML mapping. Three kinds exist, one class each: :class:`TransmissionScenario`,
:class:`BerScenario` and :class:`TrainScenario` (all :class:`Scenario`); :func:`load_scenario` reads
any of them. The modules: :mod:`~semsim.scenario.yamlio` (bounded YAML), :mod:`~semsim.scenario.fields`
(the checks every kind shares: SNRs, budgets, specs), one module per kind.

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

import re
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import ConfigError, choices
from .base import COMMON_KEYS, Point, Scenario, SweepScenario
from .ber import BER_COLUMNS, BerScenario
from .fields import (MAX_BATCH, MAX_BITS, MAX_CHANNEL_USES, MAX_NAME_CHARS, MAX_PATH_CHARS, MAX_SNR_POINTS,
                     check_budget_fits, expect, finite_ratio, parse_budget, parse_budgets, parse_snr, parse_snr_list,
                     safe_name, spec_key, text)
from .training import (DEFAULT_RECONSTRUCTION_DATA, DEFAULT_SEGMENTATION_DATA, DEFAULT_VALIDATION_DATA,
                       INIT_CHOICES, OPTIMIZER_DEFAULTS, PRECISIONS, SCHEDULES, TrainScenario, TrainSettings,
                       build_train_codec, train_cache)
from .transmission import TransmissionScenario
from .yamlio import MAX_DEPTH, MAX_SCENARIO_BYTES, MAX_TEXT_CHARS, MAX_VALUES, check_plain, parse_yaml, read_yaml

#: ``kind:`` value → its scenario class
KINDS: dict[str, type[Scenario]] = {cls.kind: cls for cls in (TransmissionScenario, BerScenario, TrainScenario)}


def load_scenario(source: str | Path | dict[str, Any], *, check_classes: bool = True) -> Scenario:
    """Parse and validate a scenario from a YAML file path or an already-parsed mapping.

    Builds (and so checks) every channel and method spec and opens every dataset; raises
    :class:`ConfigError` / :class:`DataError` with a clear message on the first problem.
    ``check_classes=False`` lets a segmentation method predict another class count than its
    dataset's (``semsim grid`` draws such a prediction unscored; ``semsim run`` never allows it).

    :returns: the kind's class: :class:`TransmissionScenario`, :class:`BerScenario` or :class:`TrainScenario`.
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
    check_plain(raw, "scenario")
    kind = raw.get("kind", "transmission")
    if kind not in KINDS:
        raise ConfigError(f"unknown scenario kind {kind!r}; valid choices: {choices(KINDS)}")
    cls = KINDS[kind]
    unknown = sorted(set(raw) - cls.keys)
    if unknown:
        raise ConfigError(f"unknown scenario key(s) {choices(unknown)} for kind {kind!r}; "
                          f"valid keys: {choices(sorted(cls.keys))}")
    name = raw.get("name", path.stem if path else "scenario")
    text(name, "name", MAX_NAME_CHARS)
    if "description" in raw and raw["description"] is not None:
        expect(raw["description"], str, "description")
    seed = raw.get("seed", 0)
    expect(seed, int, "seed")
    if not -2**63 <= seed < 2**63:
        raise ConfigError(f"seed must be an integer in [-2**63, 2**63), got {seed}")
    device = raw.get("device", "cpu")
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:[0-9]{1,3})?", device):
        raise ConfigError(f"device must be one of 'cpu', 'cuda', 'cuda:N', got {device!r}")
    output = raw.get("output", cls.default_output(name))
    text(output, "output", MAX_PATH_CHARS)
    sc = cls(name=name, seed=seed, raw=raw, path=path, device=device, output=Path(output).expanduser())
    sc.parse(raw, check_classes)
    counts = Counter(p.key for p in sc.points())
    if len(counts) < sum(counts.values()):
        dup = next(k for k, n in counts.items() if n > 1)
        raise ConfigError(f"point {dup!r} appears twice (a repeated MCS, method or value); each may appear once")
    return sc


__all__ = [
    "BER_COLUMNS", "COMMON_KEYS", "DEFAULT_RECONSTRUCTION_DATA", "DEFAULT_SEGMENTATION_DATA",
    "DEFAULT_VALIDATION_DATA", "INIT_CHOICES", "KINDS", "MAX_BATCH", "MAX_BITS", "MAX_CHANNEL_USES", "MAX_DEPTH",
    "MAX_NAME_CHARS", "MAX_PATH_CHARS", "MAX_SCENARIO_BYTES", "MAX_SNR_POINTS", "MAX_TEXT_CHARS", "MAX_VALUES",
    "OPTIMIZER_DEFAULTS", "PRECISIONS", "SCHEDULES", "BerScenario", "Point", "Scenario", "SweepScenario",
    "TrainScenario", "TrainSettings", "TransmissionScenario", "build_train_codec", "check_budget_fits",
    "finite_ratio", "load_scenario", "parse_budget", "parse_budgets", "parse_snr", "parse_snr_list", "parse_yaml",
    "read_yaml", "safe_name", "spec_key", "train_cache"]
