"""The training panel: simulated annotators, a STAND-IN for people, who label the preference pairs.

They are not people. Each reads both captions with the corpus lexicon (`parse.py`), compares what they claim
with the clip's exact metadata, and weighs what a careful listener weighs: events heard and missed, events
invented or denied, wrong attributes and order, correctly stated relations, and fluency (stutters, sentences cut
off on "followed by", word lists, broken grammar, absurd length). Annotators differ, as people do
(`panel.py`: weights, noise, ties, position and length biases).

The final systems are judged by another panel written apart from this one (`eval_judge/`), so RL cannot win
by exploiting this panel's quirks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from prefcap.data.records import Clip
from prefcap.errors import PrefcapError
from prefcap.synth.panel import PanelSpec
from prefcap.synth.parse import ParsedCaption, parse_caption
from prefcap.synth.scene import Scene


@dataclass(frozen=True)
class Weights:
    """What a caption's quality is made of; all penalties are per fault."""

    recall: float = 4.0  # for naming every event (a fraction of it for each one missed)
    background_share: float = 0.6  # a background event counts this much of a foreground one
    hallucination: float = 1.6  # per sound named that is not there (a scene class or any other source)
    denial: float = 2.0  # per sound of the clip the caption says is absent ("no rain"), or "silence"
    wrong_attribute: float = 0.9
    detail: float = 0.25  # bonus per correctly stated attribute
    relation: float = 0.9  # wrong order, wrong "at the same time", wrong "in the background"
    relation_credit: float = 0.6  # bonus per correctly stated order, "at the same time" or "in the background"
    repetition: float = 1.6
    truncation: float = 1.6
    word_list: float = 2.0  # names strung together without a sentence ("piano whistle")
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


def score_terms(parsed: ParsedCaption, scene: Scene, weights: Weights) -> dict:
    """Each signed term of a caption's quality; their sum is the quality."""
    share = {e.cls: (weights.background_share if e.background else 1.0) for e in scene.events}
    mentioned = parsed.classes
    recall = sum(w for cls, w in share.items() if cls in mentioned) / sum(share.values())

    correct, wrong = _comparison_counts(parsed, scene)
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

    right, wrong_relations = _relation_counts(parsed, scene, set(share))

    n = parsed.n_words
    return {
        "recall": weights.recall * recall,
        "hallucination": -weights.hallucination * len(mentioned - set(share)),
        "wrong_attribute": -weights.wrong_attribute * wrong,
        "detail": weights.detail * correct,
        "relation": -weights.relation * wrong_relations,
        "relation_credit": weights.relation_credit * right,
        "denial": -weights.denial * (len(parsed.denied & set(share)) + (parsed.silence and bool(share))
                                     + (parsed.exclusive and bool(set(share) - mentioned))),
        "repetition": -weights.repetition * min(parsed.repetitions, 3),
        "truncation": -weights.truncation * parsed.truncated,
        "word_list": -weights.word_list * parsed.word_list,
        "grammar": -weights.grammar * parsed.grammar_issues,
        "length": -weights.length * max(0, weights.min_words - n, n - weights.max_words),
    }


def _comparison_counts(parsed: ParsedCaption, scene: Scene) -> tuple[int, int]:
    """(right, wrong) among "X is louder than Y" claims whose two events differ in that attribute."""
    values = {e.cls: e.attributes for e in scene.events}
    right = wrong = 0
    for first, attribute, claimed, second in parsed.comparisons:
        a, b = values.get(first, {}).get(attribute), values.get(second, {}).get(attribute)
        if a is not None and b is not None and a != b:
            right, wrong = right + (a == claimed), wrong + (a != claimed)
    return right, wrong


def _relation_counts(parsed: ParsedCaption, scene: Scene, present: set[str]) -> tuple[int, int]:
    """(right, wrong) among the order, "at the same time" and background relations the caption states between
    sounds of the clip. The background sounds throughout, so it is neither before nor after anything."""
    right = wrong = 0
    for a, b in parsed.before:
        if a in present and b in present:
            steps = scene.step_of(a), scene.step_of(b)
            ok = None not in steps and steps[0] < steps[1]
            right, wrong = right + ok, wrong + (not ok)
    for pair in parsed.together:
        a, b = tuple(pair)
        if a in present and b in present:
            steps = scene.step_of(a), scene.step_of(b)
            ok = None in steps or steps[0] == steps[1]
            right, wrong = right + ok, wrong + (not ok)
    background = {e.cls for e in scene.events if e.background}
    for cls in parsed.background & present:
        right, wrong = right + (cls in background), wrong + (cls not in background)
    return right, wrong


def caption_quality(text: str, scene: Scene, weights: Weights = Weights()) -> float:  # noqa: B008 (frozen)
    return float(sum(score_terms(_parse(text), scene, weights).values()))


@dataclass(frozen=True)
class TrainingListener:
    """The training panel's way of reading: the corpus lexicon's parser + `score_terms` against the scene."""

    def quality(self, text: str, clip: Clip, weights: Weights) -> float:
        return caption_quality(text, scene_of(clip), weights)

    def n_words(self, text: str) -> int:
        return _parse(text).n_words


TRAINING_PANEL = PanelSpec(
    name="train",
    size=5,
    listener=TrainingListener(),
    weights=Weights(),
    jittered=("recall", "hallucination", "denial", "wrong_attribute", "detail", "relation", "relation_credit",
              "repetition", "truncation", "word_list", "grammar", "length"),
    weight_jitter=0.35,
    noise="logistic",
    temperature=(0.15, 0.35),
    tie_threshold=(0.1, 0.25),
    position_bias_sd=0.05,
    length_preference_sd=0.02,
)
