"""Benchmark: how long the synthetic corpus takes to generate (the target is 3,000 clips in < 60 s on 2 cores).

Run with `make bench`; prints a table and merges its figures into bench/results.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from record import record

from prefcap.provenance import machine
from prefcap.synth.corpus import SynthConfig, synthesize


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()

    seconds = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            synthesize(tmp, SynthConfig(n=args.n, domain="target", seed=repeat), progress=False)
            seconds.append(time.perf_counter() - start)
    figures = {
        "synth_clips": args.n,
        "synth_seconds_median": statistics.median(seconds),
        "synth_seconds_min": min(seconds),
        "synth_seconds_max": max(seconds),
        "synth_clips_per_second": args.n / statistics.median(seconds),
        "machine": machine(),
    }
    record(args.results, "synth", figures)
    print(f"synth {args.n} target clips: median {figures['synth_seconds_median']:.1f} s "
          f"(min {min(seconds):.1f}, max {max(seconds):.1f}, {args.repeats} runs) "
          f"= {figures['synth_clips_per_second']:.0f} clips/s on {figures['machine']}")


if __name__ == "__main__":
    main()
