"""`prefcap eval`: several systems on the same test clips — metrics, and blind pairwise preference.

Systems are captioner folders / hub ids (captioned greedily) or caption files (`captions.jsonl`, the first
caption of each clip), scored and compared by eval/systems.py — the same path as the demo's evaluation. Judges:
- `simulated`: the evaluation panel (never the panel that labelled training pairs); needs the synthetic corpus's
  scene metadata;
- `humans`: the first run stores every comparison's two captions of each clip as a pair in the judgment store
  (origin `eval`) for `prefcap assign` + `prefcap annotate`; later runs turn the stored judgments into the same
  statistics (one outcome per clip, the sign of its vote sum) and report the clips still pending.
With more than two systems, a Bradley–Terry ranking with bootstrap intervals is added.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path

from prefcap.data.records import Caption, Choice, Clip
from prefcap.encoders.base import AudioTextEncoder
from prefcap.encoders.cache import EmbeddingCache
from prefcap.errors import PrefcapError
from prefcap.eval.pairwise import clip_outcomes
from prefcap.eval.systems import Outcomes, caption_systems, evaluate_systems, summarise_systems, write_captions
from prefcap.io import atomic_write
from prefcap.prefs.store import NewPair, Store
from prefcap.reward.model import RewardModel
from prefcap.synth import panels

SYSTEM_NAME = re.compile(r"[\w.+-]+")

EVAL_ORIGIN = "eval"


def load_systems(specs: Sequence[str], clips: Sequence[Clip], progress: bool = True) -> dict[str, dict[str, str]]:
    """NAME=PATH items -> {name: {clip id: caption}} for every clip (captioned or read by `caption_systems`)."""
    sources: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise PrefcapError(f"--system expects NAME=PATH, got {spec!r}")
        if not SYSTEM_NAME.fullmatch(name):
            raise PrefcapError(f"system name {name!r}: use letters, digits and _ . + - (it names output files)")
        if name in sources:
            raise PrefcapError(f"system {name!r} given twice")
        sources[name] = path
    if len(sources) < 2:
        raise PrefcapError("give at least two systems (--system NAME=PATH) to compare")
    return caption_systems(sources, clips, progress=progress)


def comparisons(names: Sequence[str], baseline: str | None) -> list[tuple[str, str]]:
    if baseline is None:
        return list(itertools.combinations(names, 2))
    if baseline not in names:
        raise PrefcapError(f"--baseline {baseline!r} is not one of the systems ({', '.join(names)})")
    return [(name, baseline) for name in names if name != baseline]


class StoredJudgments:
    """Human verdicts from the store: the sign of each stored eval pair's vote sum, from either order."""

    def __init__(self, store: Store) -> None:
        self.votes: dict[tuple[str, str, str], int] = {}
        for row in store.judgment_rows():
            if row["origin"] == EVAL_ORIGIN and row["choice"] in ("a", "b", "tie"):
                key = (row["clip_id"], row["caption_a"], row["caption_b"])
                self.votes[key] = self.votes.get(key, 0) + {"a": 1, "b": -1, "tie": 0}[row["choice"]]

    def judged(self, clip_id: str, first: str, second: str) -> bool:
        return (clip_id, first, second) in self.votes or (clip_id, second, first) in self.votes

    def __call__(self, clip: Clip, first: str, second: str) -> Choice:
        total = self.votes.get((clip.id, first, second), -self.votes.get((clip.id, second, first), 0))
        return "a" if total > 0 else "b" if total < 0 else "tie"


def queue_for_humans(store: Store, clips: Sequence[Clip], systems: dict[str, dict[str, str]],
                     pairs: Sequence[tuple[str, str]]) -> int:
    """Store each comparison's captions of each clip as a pair to judge (identical captions are not asked)."""
    store.add_clips(clips)
    new = [NewPair(clip, Caption(clip_id=clip.id, text=systems[a][clip.id], source=a),
                   Caption(clip_id=clip.id, text=systems[b][clip.id], source=b))
           for a, b in pairs for clip in clips
           if systems[a][clip.id].strip().lower() != systems[b][clip.id].strip().lower()]
    return store.add_pairs(new, origin=EVAL_ORIGIN)


def human_outcomes(store: Store, clips: Sequence[Clip], systems: dict[str, dict[str, str]],
                   pairs: Sequence[tuple[str, str]], seed: int = 0) -> tuple[Outcomes, dict[str, int]]:
    """Queue what people have not judged yet; (the outcomes of each pair on its clips judged so far, the clips
    still pending per pair). Its own loop, not `pair_outcomes`: each pair is scored on its own subset of ready
    clips, while the simulated judges see every clip; the records and the ranking are the shared ones."""
    added = queue_for_humans(store, clips, systems, pairs)
    stored = StoredJudgments(store)
    outcomes: Outcomes = {}
    pending: dict[str, int] = {}
    for a, b in pairs:
        ready = [c for c in clips if systems[a][c.id].strip().lower() == systems[b][c.id].strip().lower()
                 or stored.judged(c.id, systems[a][c.id], systems[b][c.id])]
        pending[f"{a} vs {b}"] = len(clips) - len(ready)
        outcomes[(a, b, "humans")] = clip_outcomes(ready, systems[a], systems[b], stored, seed)
    pending["pairs_added_now"] = added
    return outcomes, pending


def run_eval(clips: Sequence[Clip], specs: Sequence[str], out: str | Path, *, judges: str = "simulated",
             references: dict[str, list[str]] | None = None, encoder: AudioTextEncoder | None = None,
             reward_dir: str | Path | None = None, cache_root: str | Path | None = None, store: Store | None = None,
             baseline: str | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Evaluate; write `eval.json` and each system's captions to `out`; return the results."""
    if not clips:
        raise PrefcapError("no clips to evaluate on")
    systems = load_systems(specs, clips, progress)
    pairs = comparisons(list(systems), baseline)
    audio = reward = None
    if encoder is not None:
        audio = EmbeddingCache(cache_root or Path(out) / "cache", encoder).embed_clips(clips, progress=progress)
        reward = RewardModel.load(reward_dir, encoder=encoder) if reward_dir else None
    elif reward_dir:
        raise PrefcapError("--reward needs --encoder (the CLAP the reward model was trained on)")
    scoring = {"references": references, "encoder": encoder, "audio": audio, "reward": reward, "seed": seed}
    pending: dict[str, int] = {}
    if judges == "simulated":
        if any("scene" not in clip.metadata for clip in clips):
            raise PrefcapError("simulated judges need the synthetic corpus's scene metadata; use --judges humans")
        summary = evaluate_systems(clips, systems, pairs, {"eval": panels.build("eval", seed).majority}, **scoring)
    elif judges == "humans":
        if store is None:
            raise PrefcapError("--judges humans needs --db (the judgment store the annotators use)")
        outcomes, pending = human_outcomes(store, clips, systems, pairs, seed)
        summary = summarise_systems(clips, systems, outcomes, **scoring)
    else:
        raise PrefcapError(f"unknown judges {judges!r}; expected simulated or humans")
    results = {"clips": len(clips), "systems": summary["systems"], "pairwise": summary["pairwise"],
               "pending": pending, "ranking": summary["ranking"]}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_captions(out, systems)
    with atomic_write(out / "eval.json") as handle:
        json.dump(results, handle, indent=2, default=float)
    return results
