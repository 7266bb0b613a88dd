"""Simulated labelling: a panel of simulated annotators works through its queues like people would.

They read the next item from the store, see the captions in the blind left/right layout (position bias included)
and answer through `Store.submit` — the path the web app uses — so simulated data has the shape of real data.
They are a stand-in for people (see prefcap.synth.panels), usable only on clips with synthetic scenes.
"""

from __future__ import annotations

from tqdm import tqdm

from prefcap.prefs.assign import AssignConfig, assign
from prefcap.prefs.store import Store
from prefcap.synth import panels

_SIDE = {"a": "left", "b": "right", "tie": "tie"}  # the annotator sees the left caption as "a"


def simulate(store: Store, panel: str = "train", seed: int = 0, overlap: int | None = 3,
             progress: bool = True) -> dict[str, int]:
    """Register the panel, top up its assignments to `overlap` judgments per pair (None: answer only what is
    already queued), and answer every open item. Returns counts."""
    simulated = panels.build(panel, seed).annotators
    annotators = store.ensure_annotators([s.name for s in simulated])
    if overlap is not None:
        assign(store, AssignConfig(overlap=min(overlap, len(annotators)), seed=seed), annotators)
    open_items = sum(total - done for done, total in map(store.progress, annotators))
    clips = {}
    answered = 0
    with tqdm(total=open_items, desc=f"simulate ({panel} panel)", unit="judgment", disable=not progress) as bar:
        for person, annotator in zip(simulated, annotators, strict=True):
            while (task := store.next_task(annotator)) is not None:
                if task.clip_id not in clips:
                    clips[task.clip_id] = store.clip(task.clip_id)
                verdict = person.prefer(clips[task.clip_id], task.left, task.right)
                store.submit(annotator, task.assignment_id, _SIDE[verdict])
                answered += 1
                bar.update()
    return {"annotators": len(annotators), "judgments": answered}
