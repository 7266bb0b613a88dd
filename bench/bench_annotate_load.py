"""Load test: 16 annotators at once over HTTP against a real `prefcap annotate` process, 100 judgments each
with random think times. Verifies exactly 1,600 judgments stored, none twice, no 5xx; reports request latency.

Merges its figures into bench/results.json under "annotate_load".
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from record import record

from prefcap.data.records import Caption, Clip
from prefcap.prefs.assign import AssignConfig, assign
from prefcap.prefs.loadtest import run_clients, running_server
from prefcap.prefs.store import NewPair, Store
from prefcap.provenance import machine


def build_store(path: Path, annotators: int, judgments: int) -> list[str]:
    store = Store(path)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--judgments", type=int, default=100, help="per annotator")
    parser.add_argument("--think-max", type=float, default=0.2, help="think time is uniform in [0, this] seconds")
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "prefs.sqlite"
        tokens = build_store(db, args.annotators, args.judgments)
        with running_server(db) as server:
            start = time.perf_counter()
            reports = run_clients(server.url, tokens, args.judgments, think_seconds=(0.0, args.think_max))
            wall = time.perf_counter() - start
        store = Store(db, create=False)
        rows = store.judgment_rows()
        expected = args.annotators * args.judgments
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
    figures = {
        "annotators": args.annotators, "judgments_each": args.judgments, "think_seconds": [0.0, args.think_max],
        **checks, "requests": len(statuses), "wall_seconds": round(wall, 2),
        "judgments_per_second": round(expected / wall, 1),
        "latency_p50_ms": percentile_ms(latencies, 50), "latency_p95_ms": percentile_ms(latencies, 95),
        "latency_max_ms": percentile_ms(latencies, 100), "passed": ok, "machine": machine(),
    }
    record(args.results, "annotate_load", figures)
    print(f"{checks['judgments_stored']} of {expected} judgments stored, {checks['duplicates']} duplicates, "
          f"{checks['responses_5xx']} 5xx, {checks['responses_4xx']} 4xx; {len(statuses)} requests in {wall:.1f} s; "
          f"latency p50 {figures['latency_p50_ms']} ms, p95 {figures['latency_p95_ms']} ms")
    if not ok:
        raise SystemExit(f"load test FAILED: {checks}")


if __name__ == "__main__":
    main()
