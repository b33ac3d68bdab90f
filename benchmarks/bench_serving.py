"""Benchmark: /metrics under many scrapers and many idle connections, on loopback.

Two parts (both bounded in count and time, traffic to 127.0.0.1 only):

``--compare`` serves the same exporter app over a filled store (about 200 KB of exposition)
with cheroot (what ``serve`` uses) and with waitress (the other candidate; no TLS), and
measures for each: the slowest probe of /metrics and /-/healthy while ``--idle`` connections
sit open and silent, and p50/p99/max latency of ``--scrapers`` concurrent scrapers.

Without it, runs the real ``crmmetrics serve`` on demo data with every metric scheduled every
10 s (so the scrapes land during a full run) and ``--scrapers`` concurrent scrapers for
``--seconds``, as Prometheus scrapes (OpenMetrics, gzip, 10 s time-out). The floor is one
scraper alone on the same server, measured in the same run.

    python benchmarks/bench_serving.py [--customers 5000] [--scrapers 100] [--seconds 30]
    python benchmarks/bench_serving.py --compare [--idle 1100] [--scrapers 100] [--seconds 10]

``--compare`` needs waitress installed (``pip install 'waitress>=3,<4'``); it is not a
dependency of crmmetrics.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def _scraper(port: int, path: str, end: float, timeout: float, results: list, errors: list) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            connection.request("GET", path, headers=PROMETHEUS_HEADERS)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors.append(f"status {response.status}")
            else:
                results.append(time.monotonic() - start)
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
        except (TimeoutError, socket.timeout):
            errors.append("timeout")
            connection.close()
        except OSError as exc:
            errors.append(type(exc).__name__)
            connection.close()
            time.sleep(0.01)


def _scraper_process(port: int, path: str, threads: int, seconds: float, timeout: float, queue) -> None:
    end = time.monotonic() + seconds
    results: list[float] = []
    errors: list[str] = []
    workers = [threading.Thread(target=_scraper, args=(port, path, end, timeout, results, errors)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((results, errors))


def load(port: int, scrapers: int, seconds: float, path: str = "/metrics", timeout: float = 10.0) -> tuple[list[float], list[str]]:
    """``scrapers`` concurrent keep-alive scrapers over a few client processes (the GIL)."""
    processes = min(4, scrapers)
    queue = multiprocessing.get_context("fork").Queue()
    children = []
    for index in range(processes):
        threads = scrapers // processes + (1 if index < scrapers % processes else 0)
        child = multiprocessing.get_context("fork").Process(target=_scraper_process, args=(port, path, threads, seconds, timeout, queue))
        child.start()
        children.append(child)
    results, errors = [], []
    for _ in children:
        r, e = queue.get(timeout=seconds + timeout + 60)
        results += r
        errors += e
    for child in children:
        child.join()
    return results, errors


def percentiles(latencies: list[float]) -> str:
    if not latencies:
        return "no successful scrape"
    ordered = sorted(latencies)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {p(0.5):7.1f} ms  p99 {p(0.99):7.1f} ms  max {ordered[-1] * 1000:7.1f} ms  ({len(ordered):,} scrapes)"


def idle_probe(port: int, idle: int, seconds: float) -> tuple[float, int, int]:
    """Hold ``idle`` silent connections for ``seconds`` while probing; (slowest probe s, probes, failures)."""
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(idle)]
    slowest, probes, failures = 0.0, 0, 0
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for path in ("/metrics", "/-/healthy"):
                start = time.monotonic()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
                        response.read()
                except OSError:
                    failures += 1
                slowest = max(slowest, time.monotonic() - start)
                probes += 1
            time.sleep(0.25)
    finally:
        for sock in held:
            sock.close()
    return slowest, probes, failures


# --- --compare: the same app on two servers ---------------------------------------------------

def _serve_app(kind: str, store_url: str, port: int) -> None:
    from crmmetrics.serve.server import ExporterApp, HTTPService
    from crmmetrics.store.store import Store

    app = ExporterApp(Store(store_url), allowed_hosts=None)
    if kind == "cheroot":
        HTTPService(app, "127.0.0.1", port, threads=16, backlog=1024, timeout=10).start()._thread.join()
    else:
        import logging

        import waitress

        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" per request
        waitress.serve(app, host="127.0.0.1", port=port, threads=16, backlog=1024, channel_timeout=10, connection_limit=2000, asyncore_use_poll=True,
                       _quiet=True)


def compare(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_exporter import fill

    from crmmetrics.store.store import Store

    with tempfile.TemporaryDirectory() as directory:
        store_url = f"sqlite:///{Path(directory) / 'store.sqlite'}"
        store = Store(store_url)
        fill(store, args.samples)
        store.engine.dispose()
        for kind in ("cheroot", "waitress"):
            port = free_port()
            child = multiprocessing.get_context("spawn").Process(target=_serve_app, args=(kind, store_url, port), daemon=True)
            child.start()
            try:
                wait_ready(f"http://127.0.0.1:{port}/-/healthy", 60)
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
                    size = len(response.read())
                floor, _ = load(port, 1, 3)
                slowest, probes, failures = idle_probe(port, args.idle, args.seconds)
                results, errors = load(port, args.scrapers, args.seconds)
                print(f"{kind:9} exposition {size:,} bytes (gzip asked by the scrapers)")
                print(f"{'':9} {args.idle} idle connections, {args.seconds:g}s: slowest probe {slowest * 1000:.0f} ms, {failures} of {probes} probes failed")
                print(f"{'':9} 1 scraper (floor):     {percentiles(floor)}")
                print(f"{'':9} {args.scrapers} scrapers, {args.seconds:g}s: {percentiles(results)}; {len(errors)} errors {sorted(set(errors))}")
                if floor and results:
                    print(f"{'':9} p50 ratio to the floor: {statistics.median(results) / statistics.median(floor):.1f}x")
            finally:
                child.terminate()
                child.join(10)


# --- default: the real `crmmetrics serve` during full runs ------------------------------------

def serve_under_load(args: argparse.Namespace) -> None:
    from crmmetrics.compute.plugins import get_plugin_manager
    from crmmetrics.compute.registry import build_registry
    from crmmetrics.data.demo import generate_demo

    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        generate_demo(f"sqlite:///{directory / 'crm.sqlite'}", customers=args.customers, seed=7)
        lines = ['[source]\nurl = "sqlite:///crm.sqlite"', '[store]\nurl = "sqlite:///store.sqlite"', '[logging]\nlevel = "WARNING"']
        for definition in build_registry(get_plugin_manager()):
            lines.append(f'[metrics.{definition.key}]\nschedule = {{ every = "10s" }}')
        config = directory / "crmmetrics.toml"
        config.write_text("\n".join(lines) + "\n")
        port = free_port()
        log = open(directory / "serve.log", "wb")
        server = subprocess.Popen([sys.executable, "-m", "crmmetrics", "serve", "--config", str(config), "--port", str(port)],
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(f"http://127.0.0.1:{port}/-/healthy")
            # Let the first full run store something, so that the exposition has its real size.
            end = time.monotonic() + 120
            while time.monotonic() < end:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
                    body = response.read()
                if body.count(b"crmmetrics_runs_total{") >= 30:
                    break
                time.sleep(1)
            with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=PROMETHEUS_HEADERS)) as response:
                compressed = len(response.read())
            floor, floor_errors = load(port, 1, 5)
            results, errors = load(port, args.scrapers, args.seconds)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
                runs = sum(float(line.rsplit(" ", 1)[1]) for line in response.read().decode().splitlines()
                           if line.startswith("crmmetrics_runs_total{"))
            print(f"demo customers: {args.customers:,}  exposition: {len(body):,} bytes ({compressed:,} gzip, OpenMetrics)")
            print(f"1 scraper (floor), 5s:          {percentiles(floor)}; {len(floor_errors)} errors")
            print(f"{args.scrapers} scrapers, {args.seconds:g}s, full runs: {percentiles(results)}; "
                  f"{len(errors)} errors, {errors.count('timeout')} time-outs")
            print(f"runs stored so far: {runs:.0f} (every metric every 10s)")
            if floor and results:
                print(f"p50 ratio to the floor: {statistics.median(results) / statistics.median(floor):.1f}x; "
                      f"throughput {len(results) / args.seconds:.0f} scrapes/s")
        finally:
            server.terminate()
            server.wait(30)
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="cheroot against waitress on the same app")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=1250, help="--compare: store samples (1,250 give about 200 KB, scorecard families included)")
    parser.add_argument("--scrapers", type=int, default=100)
    parser.add_argument("--idle", type=int, default=1100)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    if args.compare:
        args.seconds = args.seconds or 10
        compare(args)
    else:
        args.seconds = args.seconds or 30
        serve_under_load(args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
