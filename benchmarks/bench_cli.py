"""Benchmark: CLI start-up against its floor, ``python -c 'import click'`` (goal: <= 2x).

    python benchmarks/bench_cli.py [repeat]

Prints the median wall time of each command over ``repeat`` runs (default 15) and its ratio to
the floor measured in the same run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMANDS = {
    "floor: import click": [sys.executable, "-c", "import click"],
    "crmmetrics --help": [sys.executable, "-m", "crmmetrics", "--help"],
    "crmmetrics --version": [sys.executable, "-m", "crmmetrics", "--version"],
    "crmmetrics plugins new --help": [sys.executable, "-m", "crmmetrics", "plugins", "new", "--help"],
    "crmmetrics run --help": [sys.executable, "-m", "crmmetrics", "run", "--help"],
}


def median_time(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    # interleaved rounds, so that load on the machine hits floor and commands alike
    results: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(3):
        for name, argv in COMMANDS.items():
            results[name].append(median_time(argv, max(1, repeat // 3)))
    floor = statistics.median(results["floor: import click"])
    for name, values in results.items():
        value = statistics.median(values)
        print(f"{name:32s} {value * 1000:7.1f} ms  {value / floor:5.2f}x the floor")


if __name__ == "__main__":
    main()
