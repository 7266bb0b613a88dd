"""How independent the evaluation judge is of the training panel, and what each system's captions exploit.

Two panels that shared a blind spot would agree on it; these figures show how alike they judge (noise-free, so
that only the reading and the weights differ), where they part, and — read by the evaluation judge — how often a
system's captions deny sounds, invent them, drop the sentence or state relations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from prefcap.data.records import Clip
from prefcap.synth.eval_judge.reading import read_caption
from prefcap.synth.eval_judge.scoring import caption_flags, heard_scene
from prefcap.synth.panel import Panel

Pair = tuple[Clip, str, str]


def panel_independence(first: Panel, second: Panel, pairs: Sequence[Pair], examples: int = 0) -> dict:
    """How alike two panels judge without noise: the share of pairs whose noise-free mean margins have the same
    sign (pairs where either is exactly 0 left out), the correlation of those margins, and the `examples` pairs
    on which they disagree most (margins from a's side)."""
    margins = np.array([[first.noise_free_margin(*pair), second.noise_free_margin(*pair)]
                        for pair in pairs]).reshape(-1, 2)
    signed = (margins != 0).all(axis=1)
    same = np.sign(margins[:, 0]) == np.sign(margins[:, 1])
    varied = len(pairs) > 1 and margins.std(axis=0).min() > 0
    report = {"pairs": len(pairs), "agreement": float(same[signed].mean()) if signed.any() else None,
              "margin_correlation": float(np.corrcoef(margins[:, 0], margins[:, 1])[0, 1]) if varied else None}
    if examples:
        apart = np.where(signed & ~same)[0]
        worst = apart[np.argsort(-np.abs(margins[apart, 0] - margins[apart, 1]), kind="stable")][:examples]
        report["disagreements"] = [{"clip_id": pairs[k][0].id, "a": pairs[k][1], "b": pairs[k][2],
                                    f"{first.name}_margin": round(float(margins[k, 0]), 3),
                                    f"{second.name}_margin": round(float(margins[k, 1]), 3)} for k in worst]
    return report


def exploit_rates(clips: Sequence[Clip], captions: Mapping[str, str]) -> dict[str, float]:
    """Share of a system's captions (clip id -> caption) with each of `caption_flags`."""
    flags = [caption_flags(captions[clip.id], clip) for clip in clips]
    return {name: float(np.mean([f[name] for f in flags])) for name in flags[0]}


def rare_classes(clips: Sequence[Clip], share: float) -> set[str]:
    """The event classes that fewer than `share` of the clips hold (every class the scenes use is counted)."""
    counts: dict[str, int] = {}
    for clip in clips:
        for name in heard_scene(clip).classes:
            counts[name] = counts.get(name, 0) + 1
    return {name for name, n in counts.items() if n < share * len(clips)}


def events_named(clips: Sequence[Clip], captions: Mapping[str, str], rare: set[str]) -> dict[str, float | None]:
    """Exploration's diagnostic: of the sounds each clip holds, the share its caption names (not denied), as the
    evaluation judge reads it, pooled over clips — for the `rare` classes and the common ones apart. A policy
    that learns to hear what its baseline never said raises the first."""
    named = {"rare": [0, 0], "common": [0, 0]}
    for clip in clips:
        said = {concept for m in read_caption(captions[clip.id]).mentions if not m.negated
                for concept in m.sense.concepts}
        for name in heard_scene(clip).classes:
            group = named["rare" if name in rare else "common"]
            group[0] += name in said
            group[1] += 1
    return {kind: hits / total if total else None for kind, (hits, total) in named.items()}


def system_output_pairs(clips: Sequence[Clip], systems: Mapping[str, Mapping[str, str]],
                        comparisons: Sequence[tuple[str, str]]) -> list[Pair]:
    """Every compared pair of systems' captions of each clip where the two differ."""
    return [(clip, systems[a][clip.id], systems[b][clip.id]) for a, b in comparisons for clip in clips
            if systems[a][clip.id] != systems[b][clip.id]]


def panel_accuracy(panel: Panel, pairs: Sequence[Pair], labels: Sequence[int]) -> float | None:
    """How often the panel's noise-free mean margin has the sign of the label (+1: a preferred, -1: b): for the
    training panel on a reward model's held-out pairs, the most a reward model can reach on those labels."""
    if not pairs:
        return None
    return float(np.mean([np.sign(panel.noise_free_margin(*pair)) == label for pair, label in zip(pairs, labels,
                                                                                                strict=True)]))
