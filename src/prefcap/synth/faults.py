"""Caption faults: constructed captions and pairs that the simulated annotators are checked on.

`machine_like_caption` imitates what a weak captioner writes (events missed or invented, attributes and
order wrong, stutters, sentences cut short); pairs of such captions are where annotators legitimately
disagree. `single_fault_pair` is a reference against the same sentence with one clear fault, where any
careful listener prefers the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from prefcap.data.records import Clip
from prefcap.synth import grammar
from prefcap.synth.judge import scene_of
from prefcap.synth.lexicon import CLASS_NAMES, CLASSES
from prefcap.synth.scene import Scene

Pair = tuple[Clip, str, str]


def _absent_class(scene: Scene, rng: np.random.Generator) -> str:
    absent = [c for c in CLASS_NAMES if c not in scene.classes]
    return absent[int(rng.integers(len(absent)))]


def _corrupt_spec(spec: grammar.CaptionSpec, scene: Scene, fault: str, rng: np.random.Generator):
    index = int(rng.integers(len(spec.mentions)))
    if fault == "drop" and len(spec.mentions) > 1:
        return grammar.drop_mention(spec, index)
    if fault == "swap":
        return grammar.swap_mention(spec, index, _absent_class(scene, rng))
    if fault == "add":
        return grammar.add_mention(spec, _absent_class(scene, rng), rng)
    if fault == "attribute" and spec.mentions[index].cls in scene.classes:  # not an event an earlier fault invented
        cls = spec.mentions[index].cls
        attribute = CLASSES[cls].attributes[int(rng.integers(len(CLASSES[cls].attributes)))]
        true_value = next(e.attributes[attribute] for e in scene.events if e.cls == cls)
        return grammar.flip_attribute(spec, index, attribute, true_value)
    if fault == "order" and len(spec.steps) > 1:
        return grammar.reverse_order(spec)
    return spec


_SPEC_FAULTS = ("drop", "swap", "add", "attribute", "order")
_TEXT_FAULTS: dict[str, Callable[[str, np.random.Generator], str]] = {
    "repeat": grammar.repeat_phrase,
    "truncate": grammar.truncate,
}


def machine_like_caption(scene: Scene, rng: np.random.Generator, max_faults: int = 2) -> str:
    """A caption with 0..max_faults random faults and few stated attributes, like a weak captioner's."""
    spec = grammar.spec_from_scene(scene, rng, attribute_prob=float(rng.uniform(0.0, 0.4)))
    faults = rng.choice(_SPEC_FAULTS + tuple(_TEXT_FAULTS), size=int(rng.integers(0, max_faults + 1)))
    for fault in (f for f in faults if f in _SPEC_FAULTS):
        spec = _corrupt_spec(spec, scene, str(fault), rng)
    text = grammar.render(spec, int(rng.integers(2**31)))
    for fault in (f for f in faults if f in _TEXT_FAULTS):
        text = _TEXT_FAULTS[str(fault)](text, rng)
    return text


FALSE_FAULTS = ("swap", "add", "attribute")


def false_caption(scene: Scene, rng: np.random.Generator, faults: Sequence[str] = FALSE_FAULTS) -> str:
    """A fluent caption that states something false of the scene (by default an event swapped for an absent one,
    an absent event added, or an attribute flipped): a hard negative for contrastive encoder training."""
    spec = grammar.spec_from_scene(scene, rng)
    fault = faults[int(rng.integers(len(faults)))]
    return grammar.render(_corrupt_spec(spec, scene, fault, rng), int(rng.integers(2**31)))


def machine_like_pairs(clips: Sequence[Clip], rng: np.random.Generator, n: int) -> list[Pair]:
    """n pairs of two different machine-like captions of the same clip."""
    pairs: list[Pair] = []
    while len(pairs) < n:
        clip = clips[int(rng.integers(len(clips)))]
        scene = scene_of(clip)
        a, b = machine_like_caption(scene, rng), machine_like_caption(scene, rng)
        if a != b:
            pairs.append((clip, a, b))
    return pairs


SINGLE_FAULTS = ("swap", "drop", "repeat")


def single_fault_pair(clip: Clip, fault: str, rng: np.random.Generator) -> tuple[str, str]:
    """(reference, the same sentence with one fault): an event swapped for a wrong one, an event dropped,
    or a phrase repeated. Only scenes with at least two events can lose one."""
    scene = scene_of(clip)
    spec = grammar.spec_from_scene(scene, rng)
    seed = int(rng.integers(2**31))
    reference = grammar.render(spec, seed)
    index = int(rng.integers(len(spec.mentions)))
    if fault == "swap":
        return reference, grammar.render(grammar.swap_mention(spec, index, _absent_class(scene, rng)), seed)
    if fault == "drop":
        if len(spec.mentions) < 2:
            raise ValueError("dropping an event needs a scene with at least two events")
        return reference, grammar.render(grammar.drop_mention(spec, index), seed)
    if fault == "repeat":
        return reference, grammar.repeat_phrase(reference, rng)
    raise ValueError(f"unknown fault {fault!r}; expected one of {SINGLE_FAULTS}")
