"""Simulated annotators: a STAND-IN for people, so the method can run offline.

They are not people. Each reads both captions with the corpus lexicon, compares what they claim with
the clip's exact metadata, and weighs what a careful listener weighs: events heard and missed, events
invented, wrong attributes and order, and fluency (stutters, sentences cut off on "followed by", broken
grammar, absurd length). Annotators differ, as people do: each has its own weights, Bradley–Terry noise
temperature, tie threshold, position and length biases.

Two panels are built differently on purpose: the *training* panel labels the preference pairs the reward
model learns from; the *evaluation* panel (other weights, noise family, tie thresholds and phrasing
tolerance) judges the final systems, so RL cannot win by exploiting one panel's quirks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from prefcap.data.records import Choice, Clip
from prefcap.data.synth.parse import ParsedCaption, parse_caption
from prefcap.data.synth.scene import Scene
from prefcap.errors import PrefcapError


@dataclass(frozen=True)
class Weights:
    """What a caption's quality is made of; all penalties are per fault."""

    recall: float = 4.0  # for naming every event (a fraction of it for each one missed)
    background_share: float = 0.6  # a background event counts this much of a foreground one
    hallucination: float = 1.6
    wrong_attribute: float = 0.9
    detail: float = 0.25  # bonus per correctly stated attribute
    relation: float = 0.9  # wrong order, wrong "at the same time", wrong "in the background"
    repetition: float = 1.6
    truncation: float = 1.6
    grammar: float = 1.0
    length: float = 0.15  # per word outside [min_words, max_words]
    min_words: int = 4
    max_words: int = 25


def scene_of(clip: Clip) -> Scene:
    try:
        return Scene.from_dict(clip.metadata["scene"])
    except (KeyError, TypeError) as error:
        raise PrefcapError(
            f"clip {clip.id}: simulated annotators need the synthetic scene in metadata['scene'] ({error})"
        ) from None


@lru_cache(maxsize=200_000)
def _parse(text: str) -> ParsedCaption:
    return parse_caption(text)


def score_terms(parsed: ParsedCaption, scene: Scene, weights: Weights, tolerance: float = 0.0) -> dict:
    """Each signed term of a caption's quality; their sum is the quality."""
    share = {e.cls: (weights.background_share if e.background else 1.0) for e in scene.events}
    mentioned = parsed.classes
    recall = sum(w for cls, w in share.items() if cls in mentioned) / sum(share.values())

    correct = wrong = 0
    for event in scene.events:
        if event.cls not in mentioned:
            continue
        for attribute, values in parsed.attributes_of(event.cls).items():
            if attribute not in event.attributes:
                continue
            if values == {event.attributes[attribute]}:
                correct += 1
            else:
                wrong += 1

    relation_errors = sum(
        not (scene.step_of(a) is not None and scene.step_of(b) is not None and scene.step_of(a) < scene.step_of(b))
        for a, b in parsed.before
        if a in share and b in share
    )
    for pair in parsed.together:
        a, b = tuple(pair)
        steps = scene.step_of(a), scene.step_of(b)
        relation_errors += a in share and b in share and None not in steps and steps[0] != steps[1]
    background = {e.cls for e in scene.events if e.background}
    relation_errors += sum(cls in share and cls not in background for cls in parsed.background)

    n = parsed.n_words
    return {
        "recall": weights.recall * recall,
        "hallucination": -weights.hallucination * len(mentioned - set(share)),
        "wrong_attribute": -weights.wrong_attribute * wrong,
        "detail": weights.detail * correct,
        "relation": -weights.relation * relation_errors,
        "repetition": -weights.repetition * min(parsed.repetitions, 3),
        "truncation": -weights.truncation * parsed.truncated,
        "grammar": -weights.grammar * (1 - tolerance) * parsed.grammar_issues,
        "length": -weights.length * (1 - tolerance) * max(0, weights.min_words - n, n - weights.max_words),
    }


def caption_quality(text: str, scene: Scene, weights: Weights = Weights(), tolerance: float = 0.0) -> float:
    return float(sum(score_terms(_parse(text), scene, weights, tolerance).values()))


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


@dataclass(frozen=True)
class SimulatedAnnotator:
    """One simulated listener. The same question always gets the same answer (seeded by its content)."""

    name: str
    weights: Weights
    noise: str = "logistic"  # "logistic" (Bradley–Terry) or "gaussian" (Thurstone)
    temperature: float = 0.3
    tie_threshold: float = 0.2
    position_bias: float = 0.0  # added to the caption shown first (a)
    length_preference: float = 0.0  # added per word that a is longer than b
    tolerance: float = 0.0  # phrasing tolerance: how little grammar and length faults matter
    seed: int = 0

    def margin(self, scene: Scene, caption_a: str, caption_b: str) -> float:
        """How much better a looks than b to this annotator, before noise."""
        quality_a = caption_quality(caption_a, scene, self.weights, self.tolerance)
        quality_b = caption_quality(caption_b, scene, self.weights, self.tolerance)
        length_gap = _parse(caption_a).n_words - _parse(caption_b).n_words
        return quality_a - quality_b + self.position_bias + self.length_preference * length_gap

    def prefer(self, clip: Clip, caption_a: str, caption_b: str) -> Choice:
        rng = np.random.default_rng(_stable_seed(self.name, self.seed, clip.id, caption_a, caption_b))
        noise = rng.logistic() if self.noise == "logistic" else rng.standard_normal()
        margin = self.margin(scene_of(clip), caption_a, caption_b) + self.temperature * noise
        if abs(margin) < self.tie_threshold:
            return "tie"
        return "a" if margin > 0 else "b"


@dataclass(frozen=True)
class PanelSpec:
    """How to build a panel: mean weights and the spread of each annotator's traits around them."""

    name: str
    size: int
    weights: Weights
    weight_jitter: float  # each weight is scaled by exp(N(0, jitter))
    noise: str
    temperature: tuple[float, float]
    tie_threshold: tuple[float, float]
    position_bias_sd: float
    length_preference_sd: float
    tolerance: float


_JITTERED = ("recall", "hallucination", "wrong_attribute", "detail", "relation", "repetition", "truncation",
             "grammar", "length")


@dataclass
class Panel:
    name: str
    annotators: list[SimulatedAnnotator] = field(default_factory=list)

    def votes(self, clip: Clip, caption_a: str, caption_b: str) -> list[Choice]:
        return [annotator.prefer(clip, caption_a, caption_b) for annotator in self.annotators]

    def majority(self, clip: Clip, caption_a: str, caption_b: str) -> Choice:
        """The panel's verdict: the sign of the vote sum (a = +1, b = -1, tie = 0), as in FENSE."""
        return majority(self.votes(clip, caption_a, caption_b))


def majority(votes: list[Choice]) -> Choice:
    total = sum({"a": 1, "b": -1, "tie": 0}[v] for v in votes)
    return "a" if total > 0 else "b" if total < 0 else "tie"


def build_panel(spec: PanelSpec, seed: int = 0) -> Panel:
    rng = np.random.default_rng(_stable_seed("panel", spec.name, seed))
    panel = Panel(spec.name)
    for k in range(spec.size):
        scaled = {w: getattr(spec.weights, w) * float(np.exp(rng.normal(0, spec.weight_jitter))) for w in _JITTERED}
        panel.annotators.append(
            SimulatedAnnotator(
                name=f"{spec.name}-{k}",
                weights=replace(spec.weights, **scaled),
                noise=spec.noise,
                temperature=float(rng.uniform(*spec.temperature)),
                tie_threshold=float(rng.uniform(*spec.tie_threshold)),
                position_bias=float(rng.normal(0, spec.position_bias_sd)),
                length_preference=float(rng.normal(0, spec.length_preference_sd)),
                tolerance=spec.tolerance,
                seed=seed,
            )
        )
    return panel


TRAINING_PANEL = PanelSpec(
    name="train",
    size=5,
    weights=Weights(),
    weight_jitter=0.35,
    noise="logistic",
    temperature=(0.15, 0.35),
    tie_threshold=(0.1, 0.25),
    position_bias_sd=0.05,
    length_preference_sd=0.02,
    tolerance=0.0,
)

EVALUATION_PANEL = PanelSpec(
    name="eval",
    size=5,
    weights=Weights(recall=3.5, background_share=0.8, hallucination=2.0, wrong_attribute=0.7, detail=0.15,
                    relation=1.1, repetition=2.0, truncation=2.0, grammar=1.0, length=0.1, max_words=28),
    weight_jitter=0.3,
    noise="gaussian",
    temperature=(0.2, 0.4),
    tie_threshold=(0.2, 0.35),
    position_bias_sd=0.08,
    length_preference_sd=0.01,
    tolerance=0.4,
)
