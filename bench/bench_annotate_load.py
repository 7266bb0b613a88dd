"""Load test: 16 annotators at once over HTTP against a real `prefcap annotate` process, 100 judgments each
with random think times, on a SQLite store and on a throw-away PostgreSQL server. Verifies exactly 1,600 judgments
stored, none twice, no 5xx; reports request latency.

Merges its figures into bench/results.json under "annotate_load", one entry per backend.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from record import STORE_BACKENDS, record, store_target  # also puts tests/ (the shared harnesses) on sys.path

# isort: split
from loadtest import run_clients, running_server
from prefcap.data.records import Caption, Clip
from prefcap.prefs.assign import AssignConfig, assign
from prefcap.prefs.store import NewPair, Store
from prefcap.provenance import machine


def build_store(db: str | Path, annotators: int, judgments: int) -> list[str]:
    store = Store(db)
    pairs = []
    for k in range(annotators * judgments):
        clip = Clip(id=f"clip-{k:05d}")
        pairs.append(NewPair(clip, Caption(clip_id=clip.id, text=f"a dog barks {k}", source="sys-1"),
                             Caption(clip_id=clip.id, text=f"a cat meows {k}", source="sys-2")))
    store.add_pairs(pairs, origin="bench")
    tokens = [store.add_annotator(f"annotator-{k:02d}") for k in range(annotators)]
    assign(store, AssignConfig(overlap=1))
    store.close()
    return tokens


def percentile_ms(values: list[float], q: float) -> float:
    return round(1000 * float(np.percentile(values, q)), 2)


def load_test(backend: str, annotators: int, judgments: int, think_max: float) -> dict:
    """One backend's run: its figures, with `passed` saying whether every check held."""
    with tempfile.TemporaryDirectory() as tmp, store_target(backend, Path(tmp)) as db:
        tokens = build_store(db, annotators, judgments)
        with running_server(db) as server:
            start = time.perf_counter()
            reports = run_clients(server.url, tokens, judgments, think_seconds=(0.0, think_max))
            wall = time.perf_counter() - start
        store = Store(db, create=False)
        rows = store.judgment_rows()
        store.close()
    expected = annotators * judgments
    assignments = [r["assignment_id"] for r in rows]
    seen_pairs = {(r["pair_id"], r["annotator"]) for r in rows}
    statuses = [s for r in reports for s in r.statuses]
    latencies = [t for r in reports for t in r.latencies]
    problems = [r.error for r in reports if r.error]
    checks = {
        "judgments_stored": len(rows),
        "acknowledged": sum(len(r.acknowledged) for r in reports),
        "duplicates": len(assignments) - len(set(assignments)) + len(rows) - len(seen_pairs),
        "responses_5xx": sum(s >= 500 for s in statuses),
        "responses_4xx": sum(400 <= s < 500 for s in statuses),
        "client_errors": problems,
    }
    ok = (checks["judgments_stored"] == expected == checks["acknowledged"] and not checks["duplicates"]
          and not checks["responses_5xx"] and not problems)
    return {
        "annotators": annotators, "judgments_each": judgments, "think_seconds": [0.0, think_max],
        **checks, "requests": len(statuses), "wall_seconds": round(wall, 2),
        "judgments_per_second": round(expected / wall, 1),
        "latency_p50_ms": percentile_ms(latencies, 50), "latency_p95_ms": percentile_ms(latencies, 95),
        "latency_max_ms": percentile_ms(latencies, 100), "passed": ok, "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--judgments", type=int, default=100, help="per annotator")
    parser.add_argument("--think-max", type=float, default=0.2, help="think time is uniform in [0, this] seconds")
    parser.add_argument("--backends", nargs="+", choices=STORE_BACKENDS, default=list(STORE_BACKENDS))
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()

    by_backend = {}
    for backend in args.backends:
        figures = by_backend[backend] = load_test(backend, args.annotators, args.judgments, args.think_max)
        print(f"{backend}: {figures['judgments_stored']} of {args.annotators * args.judgments} judgments stored, "
              f"{figures['duplicates']} duplicates, {figures['responses_5xx']} 5xx, {figures['responses_4xx']} 4xx; "
              f"{figures['requests']} requests in {figures['wall_seconds']:.1f} s; latency p50 "
              f"{figures['latency_p50_ms']} ms, p95 {figures['latency_p95_ms']} ms")
    record(args.results, "annotate_load", by_backend)
    if failed := [backend for backend, figures in by_backend.items() if not figures["passed"]]:
        raise SystemExit(f"load test FAILED on {', '.join(failed)}")


if __name__ == "__main__":
    main()
