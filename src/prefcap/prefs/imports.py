"""Judgments made elsewhere (a JSONL file, Label Studio, FENSE) into the store, in one transaction: a file that
fails halfway imports nothing, and importing a file twice stores nothing twice."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from prefcap.data.records import Caption, Clip
from prefcap.prefs.schema import AssignmentRow, JudgmentRow, now
from prefcap.prefs.store import (
    NewPair,
    Store,
    ensure_annotator,
    ensure_caption,
    ensure_clip,
    ensure_pair,
    queue_end,
)


@dataclass(frozen=True)
class ImportedJudgment:
    pair: NewPair
    choice: str
    annotator: str
    seconds: float | None = None
    time: datetime | None = None


def import_judgments(store: Store, rows: Iterable[ImportedJudgment], origin: str, clips: Iterable[Clip] = (),
                     references: Iterable[Caption] = ()) -> dict[str, int]:
    """Store judgments made elsewhere (with their clips, references, captions, pairs and annotators), all in
    one transaction: a file that fails halfway imports nothing.

    A judgment by an annotator who already has that pair is not stored twice; it is counted as a duplicate.
    """
    stats = {"judgments": 0, "duplicates": 0}
    with store.transaction() as session:
        for clip in clips:
            ensure_clip(session, clip)
        for caption in references:
            ensure_caption(session, caption.clip_id, caption.text, caption.source, None)
        annotators: dict[str, int] = {}  # name -> id
        queue_ends: dict[int, int] = {}  # annotator id -> last queue position
        pairs: dict[tuple, tuple[int, bool]] = {}  # (clip, text a, system a, text b, system b) -> (id, flipped)
        assigned = set(session.execute(select(AssignmentRow.pair_id, AssignmentRow.annotator_id)).all())
        for row in rows:
            pair = row.pair
            key = (pair.clip.id, pair.caption_a.text, pair.caption_a.source, pair.caption_b.text,
                   pair.caption_b.source)
            if key not in pairs:
                pair_id, _, flipped = ensure_pair(session, pair, origin)
                pairs[key] = (pair_id, flipped)
            pair_id, flipped = pairs[key]
            if row.annotator not in annotators:
                annotators[row.annotator] = ensure_annotator(session, row.annotator)
                queue_ends[annotators[row.annotator]] = queue_end(session, annotators[row.annotator])
            annotator_id = annotators[row.annotator]
            if (pair_id, annotator_id) in assigned:
                stats["duplicates"] += 1
                continue
            assigned.add((pair_id, annotator_id))
            queue_ends[annotator_id] += 1
            assignment = AssignmentRow(pair_id=pair_id, annotator_id=annotator_id, a_on_left=True,
                                       position=queue_ends[annotator_id], status="done")
            session.add(assignment)
            session.flush()
            choice = {"a": "b", "b": "a"}.get(row.choice, row.choice) if flipped else row.choice
            session.add(JudgmentRow(assignment_id=assignment.id, choice=choice, a_on_left=True,
                                    seconds=row.seconds, created=row.time or now()))
            stats["judgments"] += 1
    return stats
