"""How the evaluation judge weighs a caption against the clip's true scene, and the evaluation panel.

A careful listener who knows the scene credits every sound the caption names that is there (a vague "music"
less than "a piano"), each attribute and each stated order, simultaneity or background that is right; and holds
against it every sound named that is not there (of any kind, known or not), every present sound it says is
absent, wrong attributes and relations, and the form: a list of words instead of a sentence, a sentence cut off,
repeats, words that are not English, broken syntax, absurd length.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from prefcap.data.records import Clip
from prefcap.errors import PrefcapError
from prefcap.synth.eval_judge.reading import Reading, read_caption
from prefcap.synth.panel import PanelSpec


@dataclass(frozen=True)
class HeardScene:
    """The clip's scene as this judge needs it, read from the clip's metadata."""

    classes: frozenset[str]
    step: dict[str, int]  # foreground class -> the position of its step in time
    background: frozenset[str]
    attributes: dict[str, dict[str, str]]


@functools.lru_cache(maxsize=100_000)
def _scene_from_json(text: str) -> HeardScene:
    scene = json.loads(text)
    events = scene["events"]
    step = {events[i]["cls"]: position for position, members in enumerate(scene["steps"]) for i in members}
    background = frozenset(e["cls"] for e in events if e.get("background"))
    return HeardScene(frozenset(e["cls"] for e in events), step, background,
                      {e["cls"]: dict(e["attributes"]) for e in events})


def heard_scene(clip: Clip) -> HeardScene:
    try:
        return _scene_from_json(json.dumps(clip.metadata["scene"], sort_keys=True))
    except (KeyError, TypeError, IndexError) as error:
        raise PrefcapError(f"clip {clip.id}: the evaluation judge needs the synthetic scene in "
                           f"metadata['scene'] ({error!r})") from None


@dataclass(frozen=True)
class CarefulWeights:
    recall: float = 3.5  # for naming every sound (a share of it for each one named)
    background_share: float = 0.8  # a background sound counts this much of a foreground one
    vague_share: float = 0.6  # a vague name ("music", "a tone") counts this much of a specific one
    invented: float = 2.0  # per sound named that the clip does not have
    denied_present: float = 2.5  # per sound of the clip the caption says is absent (or "silence")
    denied_absent: float = 0.3  # per absent sound named only to deny it: true, but says nothing
    wrong_attribute: float = 0.7
    attribute_credit: float = 0.15  # per attribute stated right
    relation_credit: float = 0.5  # per order, simultaneity or background stated right
    wrong_relation: float = 1.1
    repetition: float = 1.6  # per repeat (at most two counted: a stutter mars a caption, it does not erase it)
    truncation: float = 2.0
    word_list: float = 2.2  # per place where names are strung together without syntax
    non_word: float = 1.5  # per word that is not English
    misspelling: float = 0.3  # per word read as the sound word it misspells
    hedge: float = 0.3  # "maybe", "perhaps", a question: a claim not made
    grammar: float = 1.0
    length: float = 0.1  # per word outside [min_words, max_words]
    min_words: int = 4
    max_words: int = 28


def _resolve(reading: Reading, scene: HeardScene) -> list[str | None]:
    """Which present class each mention stands for (None: nothing in the clip), sounds not yet named first."""
    named: set[str] = set()
    resolved: list[str | None] = []
    for mention in reading.mentions:
        present = [c for c in mention.sense.concepts if c in scene.classes]
        fresh = [c for c in present if c not in named]
        choice = (fresh or present or [None])[0]
        if choice is not None and not mention.negated:
            named.add(choice)
        resolved.append(choice)
    return resolved


def score_terms(reading: Reading, scene: HeardScene, weights: CarefulWeights) -> dict[str, float]:
    """Each signed term of a caption's quality; their sum is the quality."""
    share = {c: weights.background_share if c in scene.background else 1.0 for c in scene.classes}
    resolved = _resolve(reading, scene)
    credit: dict[str, float] = {}
    invented: set[tuple[str, ...]] = set()
    denied_present: set[str] = set()
    denied_absent = 0
    correct_attributes = wrong_attributes = 0
    for mention, cls in zip(reading.mentions, resolved, strict=True):
        if mention.negated:
            if cls is None:
                denied_absent += 1
            else:
                denied_present.add(cls)
            continue
        if cls is None:
            invented.add(mention.sense.concepts)
            continue
        credit[cls] = max(credit.get(cls, 0.0), weights.vague_share if mention.sense.vague else 1.0)
        for attribute, values in mention.attributes.items():
            if attribute in scene.attributes[cls] and not mention.sense.vague:
                if values == {scene.attributes[cls][attribute]}:
                    correct_attributes += 1
                else:
                    wrong_attributes += 1
    recall = sum(share[c] * v for c, v in credit.items() if c not in denied_present) / sum(share.values())
    right, wrong = _relations(reading, resolved, scene)
    compared_right, compared_wrong = _comparisons(reading, resolved, scene)
    unnamed = scene.classes - set(credit)
    denials = len(denied_present) + (reading.claims_silence and bool(scene.classes)) + (
        reading.exclusive and bool(unnamed))
    n = reading.n_words
    return {
        "recall": weights.recall * recall,
        "invented": -weights.invented * len(invented),
        "denied_present": -weights.denied_present * denials,
        "denied_absent": -weights.denied_absent * denied_absent,
        "wrong_attribute": -weights.wrong_attribute * (wrong_attributes + compared_wrong),
        "attribute_credit": weights.attribute_credit * (correct_attributes + compared_right),
        "relation_credit": weights.relation_credit * right,
        "wrong_relation": -weights.wrong_relation * wrong,
        "repetition": -weights.repetition * min(reading.stutters, 2),
        "truncation": -weights.truncation * reading.truncated,
        "word_list": -weights.word_list * min(reading.list_faults, 2),
        "non_word": -weights.non_word * min(reading.non_words, 3),
        "misspelling": -weights.misspelling * min(reading.misspelled, 3),
        "hedge": -weights.hedge * reading.hedged,
        "grammar": -weights.grammar * min(reading.grammar_faults, 3),
        "length": -weights.length * max(0, weights.min_words - n, n - weights.max_words),
    }


def _comparisons(reading: Reading, resolved: list[str | None], scene: HeardScene) -> tuple[int, int]:
    """(right, wrong) among "X is louder than Y" claims about two sounds of the clip that differ in that way."""
    right = wrong = 0
    for first, attribute, claimed, second in reading.comparisons:
        a, b = resolved[first], resolved[second]
        if a is None or b is None or a == b:
            continue
        values = scene.attributes[a].get(attribute), scene.attributes[b].get(attribute)
        if None not in values and values[0] != values[1]:
            right, wrong = right + (values[0] == claimed), wrong + (values[0] != claimed)
    return right, wrong


def _relations(reading: Reading, resolved: list[str | None], scene: HeardScene) -> tuple[int, int]:
    """(right, wrong) among the stated relations between sounds of the clip."""
    def live(k: int) -> str | None:
        return None if reading.mentions[k].negated else resolved[k]

    right = wrong = 0
    for a, b in reading.order:
        first, second = live(a), live(b)
        if first is None or second is None or first == second:
            continue
        if first in scene.background or second in scene.background:
            wrong += 1  # the background sounds throughout: it is neither before nor after anything
        elif scene.step[first] < scene.step[second]:
            right += 1
        else:
            wrong += 1
    for pair in reading.together:
        a, b = sorted(pair)
        first, second = live(a), live(b)
        if first is None or second is None or first == second:
            continue
        if reading.mentions[a].background or reading.mentions[b].background:
            continue  # "with X in the background" is one claim, judged as the background below
        background = first in scene.background or second in scene.background
        if background or scene.step[first] == scene.step[second]:
            right += 1
        else:
            wrong += 1
    for mention, cls in zip(reading.mentions, resolved, strict=True):
        if mention.background and not mention.negated and cls is not None:
            if cls in scene.background:
                right += 1
            else:
                wrong += 1
    return right, wrong


@dataclass(frozen=True)
class CarefulListener:
    """The evaluation panel's way of reading: spaCy reading + `score_terms` against the clip's scene."""

    def quality(self, text: str, clip: Clip, weights: CarefulWeights) -> float:
        return float(sum(score_terms(read_caption(text), heard_scene(clip), weights).values()))

    def n_words(self, text: str) -> int:
        return read_caption(text).n_words


EVALUATION_PANEL = PanelSpec(
    name="eval",
    size=5,
    listener=CarefulListener(),
    weights=CarefulWeights(),
    jittered=("recall", "invented", "denied_present", "wrong_attribute", "attribute_credit", "relation_credit",
              "wrong_relation", "repetition", "truncation", "word_list", "non_word", "misspelling", "hedge", "grammar",
              "length"),
    weight_jitter=0.3,
    noise="gaussian",
    temperature=(0.2, 0.4),
    tie_threshold=(0.2, 0.35),
    position_bias_sd=0.08,
    length_preference_sd=0.01,
)


def caption_flags(text: str, clip: Clip) -> dict[str, bool]:
    """What a careful listener notices in one caption of a clip: a sound said to be absent, a sound named that is
    not there, no verb (a noun phrase such as "the sound of a piano", or a list), sources strung together without
    syntax ("siren, bells, rain", "piano whistle": the word-list exploit), a stated order / simultaneity /
    background, a cut-off ending, a repeat. The shares of these over a system's captions are its exploit rates."""
    reading, scene = read_caption(text), heard_scene(clip)
    live = [m for m in reading.mentions if not m.negated]
    return {
        "negation": any(m.negated for m in reading.mentions) or reading.claims_silence,
        "invented": any(not set(m.sense.concepts) & scene.classes for m in live),
        "verbless": bool(reading.mentions) and not reading.has_verb,
        "word_list": reading.list_faults > 0,
        "relations_stated": bool(reading.order or reading.together or any(m.background for m in live)),
        "truncated": reading.truncated,
        "repetition": reading.stutters > 0,
    }
