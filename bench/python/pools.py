#!/usr/bin/env python3
"""The Python row of aplex's benchmark suite.

Times workloads 1 (overhead), 2 (I/O fan-out) and 5 (map) of the Go suite with
the standard library's concurrent.futures executors, and prints one JSON
object on stdout. Only the standard library is used.

    python3 bench/python/pools.py [--short]

cmd/report runs it and prints the ratios to aplex.
"""

import argparse
import concurrent.futures as cf
import json
import math
import os
import platform
import resource
import sys
import time


def noop(x):
    """The no-op work: returns its argument."""
    return x


def sleep10ms(x):
    """The I/O work of the fan-out: sleeps 10 ms."""
    time.sleep(0.01)
    return x


def cpu_seconds(who=resource.RUSAGE_SELF):
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def warm(ex, workers):
    """Starts every worker of ex before anything is timed."""
    list(ex.map(noop, range(workers * 4)))


def row(workload, impl, works, wall, cpu, **extra):
    out = {
        "workload": workload,
        "impl": impl,
        "works": works,
        "wall_s": wall,
        "ns_per_work": wall * 1e9 / works,
        "works_per_s": works / wall,
        "cpu_us_per_work": cpu * 1e6 / works,
    }
    out.update(extra)
    return out


def timed(fn):
    """Runs fn and returns (wall seconds, CPU seconds of this process and
    of its ended children)."""
    c0 = cpu_seconds() + cpu_seconds(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    return wall, cpu_seconds() + cpu_seconds(resource.RUSAGE_CHILDREN) - c0


def submit_all(ex, fn, n):
    """Workload 1's shape: submit every work, then collect every result."""
    futures = [ex.submit(fn, i) for i in range(n)]
    for f in futures:
        f.result()


def overhead(n, cpus):
    rows = []
    with cf.ThreadPoolExecutor(max_workers=cpus * 300) as ex:
        warm(ex, cpus)
        wall, cpu = timed(lambda: submit_all(ex, noop, n))
        rows.append(row("overhead", "ThreadPoolExecutor", n, wall, cpu))
    with cf.ProcessPoolExecutor(max_workers=cpus) as ex:
        warm(ex, cpus)
        wall, cpu = timed(lambda: submit_all(ex, noop, n))
        rows.append(row("overhead", "ProcessPoolExecutor", n, wall, cpu))
    return rows


def fanout(n, in_flight):
    ideal = math.ceil(n / in_flight) * 0.01
    with cf.ThreadPoolExecutor(max_workers=in_flight) as ex:
        warm(ex, 1)
        wall, cpu = timed(lambda: submit_all(ex, sleep10ms, n))
    return [row("fanout", "ThreadPoolExecutor", n, wall, cpu, x_ideal=wall / ideal)]


def map_rows(n1, n100, cpus):
    rows = []
    with cf.ProcessPoolExecutor(max_workers=cpus) as ex:
        warm(ex, cpus)
        for chunk, n in ((1, n1), (100, n100)):
            wall, cpu = timed(lambda: list(ex.map(noop, range(n), chunksize=chunk)))
            rows.append(row("map", "ProcessPoolExecutor", n, wall, cpu, chunk=chunk))
    with cf.ThreadPoolExecutor(max_workers=cpus * 300) as ex:
        warm(ex, cpus)
        wall, cpu = timed(lambda: list(ex.map(noop, range(n1))))
        rows.append(row("map", "ThreadPoolExecutor", n1, wall, cpu, chunk=1))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", action="store_true", help="a tenth of the sizes")
    args = ap.parse_args()
    scale = 10 if args.short else 1
    cpus = os.cpu_count() or 1
    rows = []
    rows += overhead(20_000 // scale, cpus)
    rows += fanout(10_000 // scale, 1200)
    rows += map_rows(20_000 // scale, 100_000 // scale, cpus)
    json.dump(
        {
            "python": platform.python_version(),
            "cpus": cpus,
            "start_method": cf.process.mp.get_start_method() if hasattr(cf.process, "mp") else "",
            "rows": rows,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
