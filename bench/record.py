"""What the benchmarks share: merging one benchmark's figures into bench/results.json (atomically, under its own
key), and the median time of a piece of work."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
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
