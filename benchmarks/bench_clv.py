"""Benchmark: fit times of the customer-value models on the CDNOW sample (tests/data/cdnow).

    python benchmarks/bench_clv.py
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from crmmetrics.clv import fit_bgnbd, fit_gamma_gamma, fit_sbg, rfm_summary

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "cdnow"


def timed(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    raw = np.loadtxt(DATA / "CDNOW_sample.txt", dtype=str)
    days = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in raw[:, 2]], dtype="datetime64[D]")
    summary = rfm_summary(raw[:, 1].astype(int), days, raw[:, 4].astype(float), calibration_end="1997-09-30")
    print(f"customers: {summary.ids.size:,}")
    print(f"BG/NBD fit:      {timed(lambda: fit_bgnbd(summary.x, summary.t_x, summary.T)) * 1000:7.1f} ms")
    print(f"Gamma-Gamma fit: {timed(lambda: fit_gamma_gamma(summary.x, summary.mbar)) * 1000:7.1f} ms")
    survivors = [1000, 631, 468, 382, 326, 289, 262, 241]
    print(f"sBG fit:         {timed(lambda: fit_sbg(survivors)) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
