"""Info-bit throughput of semsim's DigitalLink against the same Sionna blocks wired by hand.

Both paths run encode → QAM → AWGN → demap → LDPC decode on the same codeword length, batch,
SNR and device; semsim's path goes through :class:`~semsim.channels.AWGNChannel` (per-row power
normalisation) and :meth:`~semsim.digital.DigitalLink.send`. The table gives the median of
``--repeats`` timed runs after ``--warmup`` untimed ones, and semsim's share of the raw throughput
(goal: at least 80 %).

Usage::

    python benchmarks/link_throughput.py                       # CPU, and CUDA when present
    python benchmarks/link_throughput.py --devices cpu --mcs qpsk-1/2 64qam-3/4 --batch 64
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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _median_seconds(fn: Callable[[], object], device: str, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_one(mcs_name: str, device: str, batch: int, codeword_length: int, num_bp_iter: int,
              snr_db: float, warmup: int, repeats: int, codewords_per_row: int) -> dict:
    """Time both paths for one MCS on one device; returns a row of plain data."""
    from sionna.phy.channel import AWGN
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
    from sionna.phy.mapping import BinarySource, Demapper, Mapper

    from semsim.channels import build_channel, snr_db_to_no
    from semsim.config import seed_everything, set_device
    from semsim.digital import DigitalLink, parse_mcs

    set_device(device)
    seed_everything(0)
    mcs = parse_mcs(mcs_name)
    m = mcs.num_bits_per_symbol
    # Same decoder batch on both paths: no chunking inside DigitalLink.
    link = DigitalLink(mcs, codeword_length=codeword_length, num_bp_iter=num_bp_iter, decode_chunk=None)
    channel = build_channel("awgn")
    k, n = link.k, link.n
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

    @torch.no_grad()
    def ours():
        return link.send(bits, channel, snr_db, rows=rows)[0]

    errors = int((ours() != bits).sum()) + int((raw() != bits).sum())
    t_raw = _median_seconds(raw, device, warmup, repeats)
    t_ours = _median_seconds(ours, device, warmup, repeats)
    info_bits = batch * k
    return {"device": device, "mcs": mcs.name, "batch": batch, "k": k, "n": n,
            "raw_mbit_s": info_bits / t_raw / 1e6, "semsim_mbit_s": info_bits / t_ours / 1e6,
            "ratio": t_raw / t_ours, "bit_errors": errors}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mcs", nargs="+", default=list(DEFAULT_MCS))
    parser.add_argument("--devices", nargs="+", default=None,
                        help="default: cpu, and cuda when available")
    parser.add_argument("--batch", type=int, default=None,
                        help="codewords per call (default 64 on CPU, 2048 on CUDA)")
    parser.add_argument("--codeword-length", type=int, default=1944)
    parser.add_argument("--num-bp-iter", type=int, default=20)
    parser.add_argument("--snr-db", type=float, default=20.0, help="Es/N0; high so that both decode cleanly")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--codewords-per-row", type=int, default=16)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    rows = []
    header = f"{'device':8} {'mcs':10} {'batch':>6} {'raw Mbit/s':>11} {'semsim Mbit/s':>14} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for device in devices:
        batch = args.batch or (64 if device == "cpu" else 2048)
        for mcs in args.mcs:
            row = bench_one(mcs, device, batch, args.codeword_length, args.num_bp_iter, args.snr_db,
                            args.warmup, args.repeats, args.codewords_per_row)
            rows.append(row)
            flag = "" if row["ratio"] >= 0.8 else "  (< 80 %)"
            print(f"{row['device']:8} {row['mcs']:10} {row['batch']:>6} {row['raw_mbit_s']:>11.3f} "
                  f"{row['semsim_mbit_s']:>14.3f} {row['ratio']:>6.0%}{flag}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    from semsim.config import set_device

    set_device("cpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
