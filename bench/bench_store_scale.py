"""Benchmark: the judgment store at scale — 100,000 pairs and 400,000 judgments, in SQLite and in PostgreSQL.

Fills a fresh store with bulk inserts (20,000 clips, 5 pairs each, 4 judgments per pair from a pool of 16
annotators), then times, `--repeats` times each, what must stay interactive: the JSONL and Hugging Face exports, the
admin page's statistics (over HTTP, through the app), and the reward model's data loader (stored judgments to
training pairs). Target: each under 5 s on both backends. Merges its figures into bench/results.json under
"store_scale", one entry per backend.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from record import STORE_BACKENDS, median_seconds, record, store_target
from sqlalchemy import insert, text

from prefcap.prefs.app import create_app
from prefcap.prefs.formats import export_hf, export_jsonl
from prefcap.prefs.schema import AnnotatorRow, AssignmentRow, CaptionRow, ClipRow, JudgmentRow, PairRow
from prefcap.prefs.store import Store
from prefcap.provenance import machine
from prefcap.reward.data import pairs_from_rows

CHOICES = ("a", "b", "tie", "a", "b")


def fill(store: Store, pairs: int, judgments_per_pair: int, annotators: int, pairs_per_clip: int = 5) -> None:
    """Bulk rows straight into the tables (the store's own API adds one judgment per transaction, as people do)."""
    clips = pairs // pairs_per_clip
    with store.transaction() as session:
        session.execute(insert(ClipRow), [{"id": f"clip-{c:06d}", "domain": "bench"} for c in range(clips)])
        session.execute(insert(CaptionRow), [
            {"id": p * 2 + side + 1, "clip_id": f"clip-{p // pairs_per_clip:06d}",
             "text": f"caption {side} of pair {p}: a dog barks while rain falls", "system": f"system-{side}"}
            for p in range(pairs) for side in (0, 1)])
        session.execute(insert(PairRow), [
            {"id": p + 1, "clip_id": f"clip-{p // pairs_per_clip:06d}", "caption_a_id": p * 2 + 1,
             "caption_b_id": p * 2 + 2, "origin": "bench"} for p in range(pairs)])
        session.execute(insert(AnnotatorRow), [
            {"id": a + 1, "name": f"annotator-{a}", "token_hash": f"hash-{a}"} for a in range(annotators)])
        assignments = [{"id": p * judgments_per_pair + j + 1, "pair_id": p + 1,
                        "annotator_id": (p + j) % annotators + 1, "a_on_left": (p + j) % 2 == 0,
                        "position": p, "status": "done"} for p in range(pairs) for j in range(judgments_per_pair)]
        session.execute(insert(AssignmentRow), assignments)
        session.execute(insert(JudgmentRow), [
            {"id": row["id"], "assignment_id": row["id"], "choice": CHOICES[row["id"] % len(CHOICES)],
             "a_on_left": row["a_on_left"], "seconds": 4.0} for row in assignments])
        if session.bind.dialect.name == "postgresql":  # explicit ids leave the id sequences behind: move them on
            for table in (CaptionRow, PairRow, AnnotatorRow, AssignmentRow, JudgmentRow):
                name = table.__tablename__
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id)) FROM {name}"))


def measure(backend: str, pairs: int, judgments_per_pair: int, annotators: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp, store_target(backend, Path(tmp)) as db:
        store = Store(db)
        start = time.perf_counter()
        fill(store, pairs, judgments_per_pair, annotators)
        filled = time.perf_counter() - start
        counts = store.counts()
        admin_token = store.add_annotator("lead", role="admin")
        client = TestClient(create_app(store))
        assert client.get("/login", params={"token": admin_token}).status_code == 200

        def admin_stats() -> None:
            response = client.get("/admin/api/stats")
            assert response.status_code == 200 and response.json()["counts"]["judgments"] == counts["judgments"]

        figures = {
            "pairs": counts["pairs"], "judgments": counts["judgments"], "fill_seconds": filled,
            "export_jsonl_seconds": median_seconds(lambda: export_jsonl(store, Path(tmp) / "j.jsonl"), repeats),
            "export_hf_seconds": median_seconds(lambda: export_hf(store, Path(tmp) / "hf.jsonl"), repeats),
            "admin_stats_seconds": median_seconds(admin_stats, repeats),
            "reward_loader_seconds": median_seconds(lambda: pairs_from_rows(store.iter_judgment_rows()), repeats),
            "repeats": repeats, "machine": machine(),
        }
        store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--judgments-per-pair", type=int, default=4)
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", choices=STORE_BACKENDS, default=list(STORE_BACKENDS))
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    by_backend = {}
    for backend in args.backends:
        figures = by_backend[backend] = measure(backend, args.pairs, args.judgments_per_pair, args.annotators,
                                                args.repeats)
        print(f"{backend}: judgment store with {figures['pairs']:,} pairs and {figures['judgments']:,} judgments "
              f"(filled in {figures['fill_seconds']:.1f} s); median of {args.repeats}: " + ", ".join(
                  f"{name.removesuffix('_seconds')} {value:.2f} s" for name, value in figures.items()
                  if name.endswith("_seconds") and name != "fill_seconds") + f" (target: each < 5 s); {machine()}")
    record(args.results, "store_scale", by_backend)


if __name__ == "__main__":
    main()
