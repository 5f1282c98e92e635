"""``kind: ber``: Monte-Carlo BER/BLER of coded and uncoded QAM, channel × modulation × code rate × SNR
(:func:`semsim.ber.simulate_ber`), one row per point."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import derive_seed
from ..errors import ConfigError, choices
from .base import COMMON_KEYS, Point, SweepScenario
from .fields import MAX_BITS, as_list, expect, finite, finite_ratio, parse_channels, parse_snr_list, spec_key

#: the columns of a BER results CSV
BER_COLUMNS = ("scenario", "channel", "modulation", "code_rate", "snr_db", "ebno_db", "bits", "bit_errors",
               "ber", "blocks", "block_errors", "bler", "seed", "point", "seconds")
#: integer settings and their upper bounds
_INT_SETTINGS = (("min_errors", 10**9), ("codeword_length", 10**5), ("num_bp_iter", 1000))


@dataclass
class BerScenario(SweepScenario):
    """A BER sweep (see :mod:`semsim.scenario` for the YAML form): a point stops after
    ``min_errors`` bit errors or ``max_bits`` bits."""

    kind: ClassVar[str] = "ber"
    keys: ClassVar[frozenset[str]] = COMMON_KEYS | {"channels", "snr_db", "modulations", "code_rates", "min_errors",
                                                    "max_bits", "codeword_length", "num_bp_iter"}
    columns: ClassVar[tuple[str, ...]] = BER_COLUMNS

    modulations: list[str] = field(default_factory=list)
    code_rates: list[str] = field(default_factory=list)
    min_errors: int = 1000
    max_bits: int = 10_000_000
    codeword_length: int = 1944
    num_bp_iter: int = 20

    def parse(self, raw: dict[str, Any], check_classes: bool = True) -> None:
        from ..digital import MCS, MODULATIONS, check_link

        self.channels = parse_channels(raw)
        self.snr_db = parse_snr_list(raw.get("snr_db"))
        mods = as_list(raw.get("modulations"), "modulations")
        for m in mods:
            expect(m, str, "each modulation")
        self.modulations = [m.lower() for m in mods]
        bad = [m for m in self.modulations if m not in MODULATIONS]
        if bad:
            raise ConfigError(f"unknown modulation(s) {bad}; valid choices: {choices(MODULATIONS)}")
        self.code_rates = []
        for r in as_list(raw.get("code_rates", ["uncoded"]), "code_rates"):
            if r == "uncoded":
                self.code_rates.append("uncoded")
                continue
            if not 0 < finite_ratio(r, "code rate") < 1:
                raise ConfigError(f"code rate must be in (0, 1) or 'uncoded', got {r!r}")
            self.code_rates.append(str(r))
        for key, hi in _INT_SETTINGS:
            if key in raw:
                expect(raw[key], int, key)
                if not 1 <= raw[key] <= hi:
                    raise ConfigError(f"{key} must be an integer in [1, {hi}], got {raw[key]}")
                setattr(self, key, raw[key])
        if "max_bits" in raw:
            bits = finite(raw["max_bits"], "max_bits")
            if not 1 <= bits <= MAX_BITS:
                raise ConfigError(f"max_bits must be a number in [1, {MAX_BITS:.0e}], got {raw['max_bits']!r}")
            self.max_bits = int(bits)
        for mod in self.modulations:  # codeword_length must suit every modulation and code rate
            for rate in self.code_rates:
                check_link(MCS(mod, None if rate == "uncoded" else rate), self.codeword_length)

    def points(self) -> list[Point]:
        pts = []
        for c, ch in enumerate(self.channels):
            for mod in self.modulations:
                for rate in self.code_rates:
                    for snr in self.snr_db:
                        key = f"{spec_key(ch)}|{mod}|{rate}|snr={snr:g}"
                        pts.append(Point(len(pts), key, derive_seed(self.seed, key), channel=c, snr_db=snr,
                                         axes=(("modulation", mod), ("code_rate", rate))))
        return pts

    # --- running ---------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {"kind": self.kind, "min_errors": self.min_errors, "max_bits": self.max_bits,
                "codeword_length": self.codeword_length, "num_bp_iter": self.num_bp_iter}

    def point_rows(self, runner, pt: Point) -> list[dict[str, Any]]:
        from ..ber import simulate_ber
        from ..digital import MCS

        axes = dict(pt.axes)
        mcs = MCS(axes["modulation"], None if axes["code_rate"] == "uncoded" else axes["code_rate"])
        row = simulate_ber(runner.channel(pt.channel), mcs, pt.snr_db, min_errors=self.min_errors,
                           max_bits=self.max_bits, codeword_length=self.codeword_length,
                           num_bp_iter=self.num_bp_iter, seed=pt.seed)
        row.update(scenario=self.name, channel=spec_key(self.channels[pt.channel]), seed=pt.seed,
                   point=pt.id, modulation=axes["modulation"], code_rate=axes["code_rate"])
        return [row]

    def point_seconds(self) -> list[float]:
        """An upper bound (every point runs to ``max_bits``): Sionna's BP decoder manages about
        0.12 Mbit/s of information bits on 2 CPU cores; uncoded points about 5 Mbit/s."""
        return [self.max_bits / 5e6 if dict(p.axes)["code_rate"] == "uncoded" else self.max_bits / 1.2e5
                for p in self.points()]
