"""The caption grammar: a scene's reference captions, and controlled corruptions of them.

A `CaptionSpec` says *what* a caption states (which events, which attributes, how they relate);
`render` says it in one of many ways (synonyms, orderings, active/passive, adjective or adverb). Every
mention draws its words from its own random stream, so changing one mention (a swapped event, a wrong
attribute) leaves the rest of the sentence word for word the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from prefcap.synth.lexicon import (
    ADJECTIVES,
    ADVERBS,
    ATTRIBUTE_ORDER,
    CLASSES,
    CLAUSE_CLOSERS,
    CONNECTIVES,
    GENERIC_VERBS,
)
from prefcap.synth.scene import Scene


@dataclass(frozen=True)
class Mention:
    cls: str
    attributes: dict[str, str]  # the attributes the caption states (a subset of the event's)


@dataclass(frozen=True)
class CaptionSpec:
    steps: tuple[tuple[Mention, ...], ...]
    background: Mention | None = None

    @property
    def mentions(self) -> tuple[Mention, ...]:
        return tuple(m for step in self.steps for m in step) + ((self.background,) if self.background else ())


def spec_from_scene(scene: Scene, rng: np.random.Generator, attribute_prob: float = 0.4) -> CaptionSpec:
    """A complete description of the scene that states each attribute with `attribute_prob`."""

    def mention(index: int) -> Mention:
        event = scene.events[index]
        stated = {k: v for k, v in event.attributes.items() if rng.random() < attribute_prob}
        return Mention(event.cls, stated)

    steps = tuple(tuple(mention(i) for i in step) for step in scene.steps)
    background = mention(scene.background) if scene.background is not None else None
    return CaptionSpec(steps, background)


class _Writer:
    """Renders one caption. Mention k draws from its own stream (seed, k + 1)."""

    def __init__(self, seed: int):
        self.seed = seed
        self.rng = np.random.default_rng([seed, 0])
        self.used_verbs: set[str] = set()

    def pick(self, options, rng=None):
        rng = rng or self.rng
        return options[int(rng.integers(len(options)))]

    def phrase(self, slot: int, mention: Mention, clause: bool) -> str:
        """A noun phrase, or with clause=True a noun phrase and a verb ("a loud siren wails")."""
        rng = np.random.default_rng([self.seed, slot + 1])
        event_class = CLASSES[mention.cls]
        noun = self.pick(event_class.nouns, rng)
        adjectives, adverbs = [], []
        for attribute in sorted(mention.attributes, key=ATTRIBUTE_ORDER.get):
            value = mention.attributes[attribute]
            as_adverb = clause and attribute in ADVERBS and rng.random() < 0.4
            table = ADVERBS if as_adverb else ADJECTIVES
            (adverbs if as_adverb else adjectives).append(self.pick(table[attribute][value], rng))
        words = " ".join(adjectives + [noun.text])
        if noun.number == "singular":
            article = "the" if rng.random() < 0.2 else "a"
            if article == "a" and words[0] in "aeiou":
                article = "an"
            words = f"{article} {words}"
        elif noun.number == "plural" and rng.random() < 0.2:
            words = f"some {words}"
        if not clause:
            return words
        # no tautologies such as "a chime chimes" or "an engine hum hums"
        head = noun.text.split()[-1][:3]
        verbs = [v for v in event_class.verbs if not v[0].startswith(head)] + list(GENERIC_VERBS)
        fresh = [v for v in verbs if v[0] not in self.used_verbs] or verbs
        singular, plural = self.pick(fresh, rng)
        verb = plural if noun.number == "plural" else singular
        self.used_verbs.add(singular)
        return " ".join([words, verb] + adverbs)

    def step(self, slot: int, mentions: tuple[Mention, ...]) -> str:
        if len(mentions) == 1:
            return self.phrase(slot, mentions[0], clause=True)
        a, b = mentions
        template = int(self.rng.integers(4))
        if template == 0:
            return f"{self.phrase(slot, a, True)} while {self.phrase(slot + 1, b, True)}"
        if template == 1:
            return f"{self.phrase(slot, a, True)} as {self.phrase(slot + 1, b, True)}"
        together = self.pick(("at the same time", "together", "simultaneously"))
        self.used_verbs.add("can be heard")
        return f"{self.phrase(slot, a, False)} and {self.phrase(slot + 1, b, False)} can be heard {together}"

    def foreground(self, steps: tuple[tuple[Mention, ...], ...]) -> str:
        slots = np.cumsum([0] + [len(s) for s in steps])
        if len(steps) == 1 and len(steps[0]) == 1:
            template = int(self.rng.integers(4))
            if template == 0:
                return f"the sound of {self.phrase(0, steps[0][0], False)}"
            return self.phrase(0, steps[0][0], True)
        if len(steps) == 2 and all(len(s) == 1 for s in steps):
            template = int(self.rng.integers(6))
            if template == 0:
                return f"after {self.phrase(0, steps[0][0], True)}, {self.phrase(1, steps[1][0], True)}"
            if template == 1:
                return f"{self.phrase(1, steps[1][0], True)} after {self.phrase(0, steps[0][0], True)}"
        text = self.step(int(slots[0]), steps[0])
        for position in range(1, len(steps)):
            following = steps[position]
            template = int(self.rng.integers(4))
            if template == 0 and len(following) == 1:
                text += f", followed by {self.phrase(int(slots[position]), following[0], False)}"
            else:
                joiner = (", then ", " and then ", " before ", ", then ")[template]
                text += joiner + self.step(int(slots[position]), following)
        return text

    def caption(self, spec: CaptionSpec) -> str:
        text = self.foreground(spec.steps)
        if spec.background is not None:
            slot = sum(len(s) for s in spec.steps)
            template = int(self.rng.integers(3))
            if template == 2 and text.startswith("after "):
                template = 0
            if template == 0:
                text = f"{text} while {self.phrase(slot, spec.background, True)} in the background"
            elif template == 1:
                text = f"{text} with {self.phrase(slot, spec.background, False)} in the background"
            else:
                text = f"in the background {self.phrase(slot, spec.background, True)} as {text}"
        return text[0].upper() + text[1:] + "."


def render(spec: CaptionSpec, seed: int) -> str:
    """Write the spec as one sentence; the same (spec, seed) always gives the same text."""
    if not spec.steps:
        raise ValueError("a caption spec needs at least one foreground event")
    return _Writer(seed).caption(spec)


def reference_captions(scene: Scene, seed: int, n: int = 5) -> list[str]:
    """n different reference captions of a scene (different wording and stated attributes)."""
    rng = np.random.default_rng([seed, 1])
    captions: list[str] = []
    for attempt in range(20 * n):
        text = render(spec_from_scene(scene, rng), seed * 1000 + attempt)
        if text not in captions:
            captions.append(text)
        if len(captions) == n:
            break
    return captions


# --- corruptions, for constructed comparison pairs --------------------------------------------------


def drop_mention(spec: CaptionSpec, index: int) -> CaptionSpec:
    """The spec without its index-th mention (in `spec.mentions` order)."""
    target = spec.mentions[index]
    if spec.background is target:
        return replace(spec, background=None)
    steps = tuple(s for s in (tuple(m for m in step if m is not target) for step in spec.steps) if s)
    if not steps:  # only the background is left: it becomes the caption's subject
        return CaptionSpec(((spec.background,),))
    return replace(spec, steps=steps)


def swap_mention(spec: CaptionSpec, index: int, new_cls: str) -> CaptionSpec:
    """The spec with one mention naming another class (keeping the attributes that class has)."""
    target = spec.mentions[index]
    allowed = CLASSES[new_cls].attributes
    swapped = Mention(new_cls, {k: v for k, v in target.attributes.items() if k in allowed})
    if spec.background is target:
        return replace(spec, background=swapped)
    steps = tuple(tuple(swapped if m is target else m for m in step) for step in spec.steps)
    return replace(spec, steps=steps)


def add_mention(spec: CaptionSpec, cls: str, rng: np.random.Generator) -> CaptionSpec:
    """The spec with an extra (hallucinated) event, overlapping a single step or as a new step."""
    extra = Mention(cls, {})
    singles = [i for i, step in enumerate(spec.steps) if len(step) == 1]
    if singles and rng.random() < 0.5:
        i = singles[int(rng.integers(len(singles)))]
        steps = spec.steps[:i] + ((spec.steps[i][0], extra),) + spec.steps[i + 1 :]
    else:
        steps = spec.steps + ((extra,),)
    return replace(spec, steps=steps)


def flip_attribute(spec: CaptionSpec, index: int, attribute: str, true_value: str) -> CaptionSpec:
    """The spec stating the wrong value of one attribute of one mention: the opposite of the event's
    `true_value`. (The mention may not state the attribute at all, so its own words are no guide.)"""
    target = spec.mentions[index]
    values = list(ADJECTIVES[attribute])
    flipped = Mention(target.cls, {**target.attributes, attribute: values[1 - values.index(true_value)]})
    if spec.background is target:
        return replace(spec, background=flipped)
    return replace(spec, steps=tuple(tuple(flipped if m is target else m for m in s) for s in spec.steps))


def reverse_order(spec: CaptionSpec) -> CaptionSpec:
    """The spec with its foreground steps in the wrong order."""
    return replace(spec, steps=spec.steps[::-1])


def repeat_phrase(text: str, rng: np.random.Generator) -> str:
    """Insert a copy of a 2-4 word span right after itself: the classic decoder stutter."""
    words = text.rstrip(".").split()
    length = int(rng.integers(2, 5))
    if len(words) < length:
        return f"{text.rstrip('.')} {text.rstrip('.').lower()}."
    start = int(rng.integers(0, len(words) - length + 1))
    repeated = words[: start + length] + [w.lower() for w in words[start : start + length]]
    return " ".join(repeated + words[start + length :]).rstrip(",") + "."


def truncate(text: str, rng: np.random.Generator) -> str:
    """Cut the caption right after a connective ("..., followed by"), as a decoder out of length does."""
    words = text.rstrip(".").split()
    cuts = [i for i, w in enumerate(words) if i >= 2 and w.strip(",").lower() in CONNECTIVES - CLAUSE_CLOSERS]
    if not cuts:
        return " ".join(words[:-1] + ["and"])
    return " ".join(words[: cuts[int(rng.integers(len(cuts)))] + 1])


def keyword_caption(classes: Sequence[str]) -> str:
    """Class labels as a caption ("the sound of a siren and rain"): LAION-CLAP's keyword-to-caption
    augmentation, which teaches a contrastive text tower what a single event name means."""
    nouns = []
    for cls in classes:
        noun = CLASSES[cls].nouns[0]
        nouns.append(f"a {noun.text}" if noun.number == "singular" else noun.text)
    listed = nouns[0] if len(nouns) == 1 else ", ".join(nouns[:-1]) + f" and {nouns[-1]}"
    return f"the sound of {listed}"
