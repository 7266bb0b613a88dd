"""What the benchmarks share: merging one benchmark's figures into bench/results.json (atomically, under its own
key), the median time of a piece of work, and a judgment store on either backend."""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prefcap.io import atomic_write


def record(path: Path, key: str, figures: dict) -> None:
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[key] = figures
    with atomic_write(path) as handle:
        json.dump(results, handle, indent=2)


def median_seconds(work: Callable[[], object], repeats: int, warmup: bool = False,
                   sync: Callable[[], None] | None = None) -> float:
    """Median wall time of `repeats` calls of `work`; `warmup` runs it once untimed first, and `sync` (e.g.
    torch.cuda.synchronize) waits for queued device work before each reading."""
    if warmup:
        work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


STORE_BACKENDS = ("sqlite", "postgres")
# the test harnesses the benchmarks share with the tests (a throw-away PostgreSQL server, annotators over HTTP)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


@contextlib.contextmanager
def store_target(backend: str, folder: Path) -> Iterator[str | Path]:
    """Where a benchmark's judgment store lives: a SQLite file in `folder`, or a database on a throw-away PostgreSQL
    server (the tests' own, from tests/postgres_cluster.py), stopped and removed afterwards."""
    if backend == "sqlite":
        yield folder / "prefs.sqlite"
        return
    import postgres_cluster

    with postgres_cluster.throwaway_cluster() as server:
        yield postgres_cluster.create_database(server, "bench")
