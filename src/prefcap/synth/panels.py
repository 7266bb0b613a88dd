"""The two simulated panels by name, and `prefcap judge`: let people probe the stand-ins for people.

`train` labels the preference pairs the reward model learns from (`judge.py`); `eval` judges the final systems
(`eval_judge/`, written apart from it). Any clip with a synthetic scene can be judged by either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tqdm import tqdm

from prefcap.data.records import CaptionPair, Choice, Clip
from prefcap.errors import PrefcapError
from prefcap.synth.eval_judge import EVALUATION_PANEL
from prefcap.synth.judge import TRAINING_PANEL
from prefcap.synth.panel import Panel, PanelSpec, build_panel, majority

PANELS: dict[str, PanelSpec] = {"train": TRAINING_PANEL, "eval": EVALUATION_PANEL}
# Bump when either panel's reading, weights or traits change: the demo's stages key on it, so every stage the
# listeners feed is redone.
LISTENERS_VERSION = 2


def build(name: str, seed: int = 0) -> Panel:
    if name not in PANELS:
        raise PrefcapError(f"unknown panel {name!r}; expected one of {', '.join(sorted(PANELS))}")
    return build_panel(PANELS[name], seed)


def judge_pairs(clips: Mapping[str, Clip], pairs: Sequence[tuple[str, CaptionPair]], panel: str, seed: int = 0,
                progress: bool = True) -> list[dict]:
    """Each pair's panel verdict (the majority) and votes; `pairs` are (where, pair), `where` naming its line."""
    judges = build(panel, seed)
    for where, pair in pairs:  # every cheap check before the first judgment
        if pair.clip_id not in clips:
            raise PrefcapError(f"{where}: clip {pair.clip_id!r} is not in the clips file")
        if "scene" not in clips[pair.clip_id].metadata:
            raise PrefcapError(f"{where}: clip {pair.clip_id!r} has no synthetic scene (metadata['scene']): "
                               "simulated listeners can only judge clips of the synthetic corpus")
    rows = []
    for where, pair in tqdm(pairs, desc=f"judge ({panel} panel)", unit="pair", disable=not progress):
        clip = clips[pair.clip_id]
        try:
            votes: list[Choice] = judges.votes(clip, pair.a, pair.b)
        except PrefcapError as error:
            raise PrefcapError(f"{where}: {error}") from None
        rows.append({"clip_id": pair.clip_id, "a": pair.a, "b": pair.b, "verdict": majority(votes), "votes": votes})
    return rows
