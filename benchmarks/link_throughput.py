"""Codewords per second of semsim's DigitalLink against the same Sionna blocks wired by hand.

Every path runs encode → QAM → AWGN → demap → LDPC decode on the same codeword length, batch,
SNR and device, in the same process:

- ``raw``: Sionna's blocks by hand, ``LDPC5GDecoder`` for all ``--num-bp-iter`` iterations;
- ``full``: :meth:`~semsim.digital.DigitalLink.send` with ``early_stop=False`` (semsim before
  early termination: every iteration, torch's thread count as given);
- ``early``: :meth:`~semsim.digital.DigitalLink.send` as semsim runs it, stopping each codeword
  once its syndrome holds.

semsim's paths go through :class:`~semsim.channels.AWGNChannel` (per-row power normalisation).
Each row is one device, MCS, SNR and thread count: ``1`` or ``2`` fix torch's threads for every
path; ``auto`` leaves torch's default for ``raw`` and ``full`` and lets semsim's
:class:`~semsim.digital.ThreadTuner` choose for ``early``. The SNRs are 10 dB and the MCS's
waterfall (:data:`WATERFALL_DB`, Es/N0 where the BLER at n = 1944 is about 10 %). Times are the
median (and minimum) of ``--repeats`` timed runs after ``--warmup`` untimed ones, the three paths
taking turns; codewords per CPU-second (this process's CPU time over all its threads) are steadier
than wall-clock figures on a shared machine; ``iter`` is the
mean number of BP iterations per codeword of the early path, ``bler`` its block error rate (the
paths decide identically; ``mismatch`` counts codewords where ``early`` and ``raw`` differ on the
same LLRs).

Usage::

    python benchmarks/link_throughput.py                       # CPU, and CUDA when present
    python benchmarks/link_throughput.py --devices cpu --mcs qpsk-1/2 --threads 1 auto
    python benchmarks/link_throughput.py --json out.json       # also save the rows as data
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence

import torch

DEFAULT_MCS = ("qpsk-1/2", "16qam-1/2", "64qam-3/4")
#: Es/N0 (dB) where the BLER over AWGN is about 10 % (3–30 %) at n = 1944 and 20 iterations,
#: measured over 128–256 codewords with ``semsim.ber.simulate_ber``.
WATERFALL_DB = {"qpsk-1/3": -1.0, "qpsk-1/2": 1.25, "qpsk-2/3": 3.5, "16qam-1/2": 6.5,
                "16qam-2/3": 9.25, "64qam-1/2": 10.75, "64qam-2/3": 14.0, "64qam-3/4": 15.5}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _seconds(fns: dict[str, Callable[[], object]], device: str, warmup: int, repeats: int
             ) -> dict[str, tuple[float, float, float]]:
    """(median, minimum) wall seconds and median CPU seconds (all threads of this process) of each
    function, taking turns (A B C A B C …) so that a shared machine's changing load hits every
    path alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: (statistics.median(t), min(t), statistics.median(cpu[name])) for name, t in times.items()}


def bench_one(mcs_name: str, device: str, snr_db: float, threads: str, batch: int, codeword_length: int,
              num_bp_iter: int, warmup: int, repeats: int, codewords_per_row: int) -> dict:
    """Time the three paths for one MCS, SNR and thread setting; returns a row of plain data."""
    from sionna.phy.channel import AWGN
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
    from sionna.phy.mapping import BinarySource, Demapper, Mapper

    from semsim.channels import build_channel, snr_db_to_no
    from semsim.config import seed_everything, set_device
    from semsim.digital import DigitalLink, parse_mcs

    set_device(device)
    seed_everything(0)
    default_threads = torch.get_num_threads()
    fixed = None if threads == "auto" else int(threads)
    if fixed is not None:
        torch.set_num_threads(fixed)
    mcs = parse_mcs(mcs_name)
    m = mcs.num_bits_per_symbol
    # Same decoder batch on every path: no chunking inside DigitalLink.
    common = dict(codeword_length=codeword_length, num_bp_iter=num_bp_iter, decode_chunk=None)
    full = DigitalLink(mcs, early_stop=False, decode_threads=None, **common)
    early = DigitalLink(mcs, decode_threads="auto" if fixed is None else None, **common)
    channel = build_channel("awgn")
    k, n = early.k, early.n
    rows = max(1, batch // codewords_per_row)
    bits = BinarySource()([batch, k])

    encoder = LDPC5GEncoder(k, n, num_bits_per_symbol=m, check_input=False)
    decoder = LDPC5GDecoder(encoder, hard_out=True, num_iter=num_bp_iter)
    mapper, demapper, awgn = Mapper("qam", m), Demapper("app", "qam", m), AWGN()
    no = snr_db_to_no(snr_db).to(device)

    @torch.no_grad()
    def raw():
        x = mapper(encoder(bits))
        y = awgn(x, no)
        return decoder(demapper(y, no))

    try:
        with torch.no_grad():
            # Decisions on identical LLRs, and the early path's BLER and iterations.
            x = early.encode(bits)
            y, info = channel(x.reshape(rows, -1), snr_db)
            llr = early.llr(y.reshape(batch, -1), info.no.reshape(batch, -1))
            mismatch = int((early.decode_llr(llr) != decoder(llr)).any(dim=1).sum())
            before = early.iterations_run
            decided = early.send(bits, channel, snr_db, rows=rows)[0]
            iterations = (early.iterations_run - before) / batch
            bler = float((decided != bits).any(dim=1).float().mean())
        t = _seconds({"raw": raw, "full": lambda: full.send(bits, channel, snr_db, rows=rows),
                      "early": lambda: early.send(bits, channel, snr_db, rows=rows)}, device, warmup, repeats)
        t_raw, t_full, t_early = t["raw"], t["full"], t["early"]
    finally:
        torch.set_num_threads(default_threads)
    tuner = early.tuner
    return {"device": device, "mcs": mcs.name, "snr_db": snr_db, "threads": threads,
            "early_threads": (tuner.choice if tuner is not None else fixed) if device == "cpu" else None,
            "batch": batch, "k": k, "n": n,
            "raw_cw_s": batch / t_raw[0], "full_cw_s": batch / t_full[0], "early_cw_s": batch / t_early[0],
            "raw_cw_s_best": batch / t_raw[1], "full_cw_s_best": batch / t_full[1],
            "early_cw_s_best": batch / t_early[1],
            "raw_cw_cpu_s": batch / t_raw[2], "full_cw_cpu_s": batch / t_full[2], "early_cw_cpu_s": batch / t_early[2],
            "speedup": t_raw[0] / t_early[0], "iterations": iterations, "bler": bler, "mismatch": mismatch}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mcs", nargs="+", default=list(DEFAULT_MCS))
    parser.add_argument("--devices", nargs="+", default=None,
                        help="default: cpu, and cuda when available")
    parser.add_argument("--snr-db", nargs="+", default=None,
                        help="Es/N0 values in dB, or 'waterfall' (default: 10 waterfall)")
    parser.add_argument("--threads", nargs="+", default=None,
                        help="torch threads on the CPU: integers or 'auto' (default: 1, torch's default, auto)")
    parser.add_argument("--batch", type=int, default=None,
                        help="codewords per call (default 64 on CPU, 2048 on CUDA)")
    parser.add_argument("--codeword-length", type=int, default=1944)
    parser.add_argument("--num-bp-iter", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--codewords-per-row", type=int, default=16)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    snrs = args.snr_db or ["10", "waterfall"]
    rows = []
    header = (f"{'device':7} {'mcs':10} {'snr':>5} {'threads':>7} {'raw cw/s':>9} {'full cw/s':>9} "
              f"{'early cw/s':>10} {'speedup':>7} {'raw/CPU-s':>9} {'early/CPU-s':>11} {'iter':>5} {'bler':>5} "
              f"{'mismatch':>8}")
    print(header)
    print("-" * len(header))
    for device in devices:
        batch = args.batch or (64 if device == "cpu" else 2048)
        thread_list = (args.threads or ["1", str(torch.get_num_threads()), "auto"]) if device == "cpu" else ["auto"]
        for mcs in args.mcs:
            for snr in snrs:
                snr_db = WATERFALL_DB[mcs] if snr == "waterfall" else float(snr)
                for threads in dict.fromkeys(thread_list):
                    row = bench_one(mcs, device, snr_db, threads, batch, args.codeword_length, args.num_bp_iter,
                                    args.warmup, args.repeats, args.codewords_per_row)
                    rows.append(row)
                    chosen = f"{threads}" if threads != "auto" or row["early_threads"] is None \
                        else f"auto:{row['early_threads']}"
                    print(f"{device:7} {mcs:10} {snr_db:>5.2f} {chosen:>7} {row['raw_cw_s']:>9.1f} "
                          f"{row['full_cw_s']:>9.1f} {row['early_cw_s']:>10.1f} {row['speedup']:>6.1f}x "
                          f"{row['raw_cw_cpu_s']:>9.1f} {row['early_cw_cpu_s']:>11.1f} {row['iterations']:>5.1f} {row['bler']:>5.2f} {row['mismatch']:>8}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    from semsim.config import set_device

    set_device("cpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
