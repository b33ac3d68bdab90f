"""Benchmark: CLI start-up against its floor, ``python -c 'import click'`` (goal: <= 2x and <= 0.15 s).

    python benchmarks/bench_cli.py [repeat]

Times every command's help page and the admin commands that compute nothing (listing metrics and
plugins, checking the config, listing standards, the store's revision) on an empty source with
one config KPI (given with ``--config``; the others run where no config file is found), and
prints each command's median wall time over ``repeat`` runs (default 6) with its ratio to the
floor measured in the same run, interleaved so that load hits all alike. The commands that open
the source or the store are also shown against ``python -c 'import sqlalchemy'``, which they
cannot start faster than.

The commands run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed from their
environment), as after ``pip install``, which byte-compiles the package: without it every run
compiles crmmetrics' modules again and pays for it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "crmmetrics"]
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
FLOOR = "floor: import click"
# The commands that open the source or the store cannot start before SQLAlchemy has imported:
# they are shown against that floor too (measured in the same run).
DATABASE_FLOOR = "floor: import sqlalchemy"
DATABASE_COMMANDS = ("config check", "standards list", "store current")
GOAL_SECONDS, GOAL_RATIO = 0.15, 2.0

CONFIG = """\
[source]
url = "sqlite:///{directory}/crm.sqlite"
[store]
url = "sqlite:///{directory}/store.sqlite"
[kpis.cfg_orders]
name = "Orders"
process = "value_creation"
perspective = "customer"
value_lens = "customer_value"
unit = "count"
direction = "higher_is_better"
sql = "SELECT count(*) AS value FROM orders WHERE ordered_at >= :start AND ordered_at < :end"
"""


def commands(config: Path) -> dict[str, list[str]]:
    from crmmetrics.cli import COMMANDS

    found = {FLOOR: [sys.executable, "-c", "import click"], DATABASE_FLOOR: [sys.executable, "-c", "import sqlalchemy"], "--help": ["--help"], "--version": ["--version"]}
    found.update({f"{name} --help": [name, "--help"] for name in COMMANDS})
    for path in (("kpis", "add"), ("plugins", "new"), ("metrics", "list"), ("standards", "set"), ("alerts", "export")):
        found[f"{' '.join(path)} --help"] = [*path, "--help"]
    found.update({
        "metrics list": ["metrics", "list"],
        "metrics list --config": ["metrics", "list", "--config", str(config)],
        "plugins": ["plugins"],
        "plugins --config": ["plugins", "--config", str(config)],
        "config check": ["config", "check", str(config)],
        "standards list": ["standards", "list", "--config", str(config)],
        "store current": ["store", "current", "--config", str(config)],
        "store history": ["store", "history"],
    })
    return {name: argv if name.startswith("floor:") else [*CLI, *argv] for name, argv in found.items()}


def median_time(argv: list[str], repeat: int, cwd: str) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=ENV)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "crmmetrics.toml"
        config.write_text(CONFIG.format(directory=directory), encoding="utf-8")
        subprocess.run([*CLI, "source", "init", f"sqlite:///{directory}/crm.sqlite"], check=True, capture_output=True)
        # a run creates the store and records the plugins' default standards
        subprocess.run([*CLI, "run", "--metric", "cfg_orders", "--config", str(config)], check=True, capture_output=True)
        argvs = commands(config)
        for argv in argvs.values():  # writes the bytecode caches, as pip install would have
            subprocess.run(argv, check=True, capture_output=True, cwd=directory, env=ENV)
        # Run from a folder without a crmmetrics.toml: the commands without --config read none
        # (from the config's folder they would find it and load the config model).
        elsewhere = Path(directory) / "elsewhere"
        elsewhere.mkdir()
        results: dict[str, list[float]] = {name: [] for name in argvs}
        for _ in range(3):
            for name, argv in argvs.items():
                results[name].append(median_time(argv, max(1, repeat // 3), str(elsewhere)))
    floor = statistics.median(results[FLOOR])
    database_floor = statistics.median(results[DATABASE_FLOOR])
    for name, values in results.items():
        value = statistics.median(values)
        goal = "" if name.startswith("floor:") else ("  meets the goal" if value <= GOAL_SECONDS and value / floor <= GOAL_RATIO else "")
        beside = f"  {value / database_floor:5.2f}x import sqlalchemy" if name in DATABASE_COMMANDS else ""
        print(f"{name:32s} {value * 1000:7.1f} ms  {value / floor:5.2f}x the floor{goal}{beside}")


if __name__ == "__main__":
    main()
