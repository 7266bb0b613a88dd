"""Contrast pairs: a caption set against a damaged copy of itself, for annotators to judge like any other pair.

A captioner's own samples rarely hold the failures RL will find (a caption cut off mid-phrase, a sound said twice,
a sound denied or invented, a list of nouns without a verb, a fluent caption of another clip), so a reward model
trained on them alone has never seen those failures labelled and may pay for them. Mixing a share of contrast
pairs into a round (`PairsConfig.contrast_fraction`) shows them to the annotators, who decide as usual: a
perturbation only proposes a worse caption, it never labels one. Every perturbation is a plain text operation on
English captions, with no knowledge of the clip, so the same pairs can be made for real data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

ARTICLES = ("a", "an", "the")
# words after which an English caption cannot end: where a cut leaves the listener waiting
OPEN_WORDS = frozenset(("a", "an", "the", "of", "with", "and", "or", "while", "as", "by", "to", "in", "on", "at",
                        "from", "into", "followed", "then", "before", "after", "some", "several", "its", "their",
                        "his", "her", "this", "that", "is", "are", "was", "be", "being", "can", "could", "very",
                        "high", "low", "loud", "soft", "distant"))
CONNECTIVES = ("while", "as", "and then", "followed by", "with")
PERTURBATIONS = ("cut_off", "repeat", "negate", "verbless", "other_clip", "add_other_sound", "shuffle")
PERTURBATIONS_VERSION = 1  # raise when a perturbation changes: stored contrast pairs were made by another version

Perturbation = Callable[[str, Sequence[str], np.random.Generator], str | None]


def _words(caption: str) -> list[str]:
    return caption.strip().rstrip(".!?").split()


def _sentence(words: Sequence[str]) -> str:
    text = " ".join(words)
    return text[:1].upper() + text[1:] + "." if text else ""


def cut_off(caption: str, others: Sequence[str], rng: np.random.Generator) -> str | None:
    """Stop after a word that leaves the phrase open ("a dog barks while a"), else mid-caption."""
    words = _words(caption)
    open_at = [k for k in range(1, len(words) - 1) if words[k].lower() in OPEN_WORDS]
    if open_at:
        end = int(rng.choice(open_at)) + 1
    elif len(words) >= 4:
        end = int(rng.integers(2, len(words) - 1))
    else:
        return None
    return " ".join(words[:end])  # no final full stop: the speaker stopped


def repeat(caption: str, others: Sequence[str], rng: np.random.Generator) -> str | None:
    """Say a phrase twice: a word stutter, a repeated phrase, or the whole sentence again."""
    words = _words(caption)
    if len(words) < 3:
        return None
    form = rng.integers(3)
    if form == 0:
        k = int(rng.integers(len(words)))
        return _sentence([*words[:k + 1], words[k], *words[k + 1:]])
    if form == 1:
        start = int(rng.integers(0, len(words) - 2))
        span = words[start:start + int(rng.integers(2, 4))]
        end = start + len(span)
        return _sentence([*words[:end], *span, *words[end:]])
    return f"{_sentence(words)} {_sentence(words)}"


def _nouns(words: Sequence[str]) -> list[str]:
    """The words right after an article: a plain stand-in for the caption's sound sources."""
    nouns = []
    for k, word in enumerate(words[:-1]):
        follower = words[k + 1].strip(",;").lower()
        if word.lower() in ARTICLES and follower not in OPEN_WORDS:
            nouns.append(follower)
    return nouns


def negate(caption: str, others: Sequence[str], rng: np.random.Generator) -> str | None:
    """Deny the caption's sounds: "no dog barks", "a dog is not barking", "there is no sound of ...", "without any
    dog or rain", "the dog cannot be heard", "neither dog nor rain can be heard"."""
    words = _words(caption)
    if not words:
        return None
    lowered = [w.lower() for w in words]
    nouns = _nouns(words)
    forms = [["there", "is", "no", "sound", "of", *(lowered[1:] if lowered[0] in ARTICLES else lowered)]]
    if any(w in ARTICLES for w in lowered):
        k = next(i for i, w in enumerate(lowered) if w in ARTICLES)
        forms.append([*words[:k], "no", *words[k + 1:]])
    aux = [i for i, w in enumerate(lowered) if w in ("is", "are", "can")]
    if aux:
        forms.append([*words[:aux[0] + 1], "not", *words[aux[0] + 1:]])
    if nouns:
        forms += [["without", "any", " or ".join(nouns)], ["the", nouns[0], "cannot", "be", "heard"]]
    if len(nouns) >= 2:
        forms.append(["neither", nouns[0], "nor", nouns[1], "can", "be", "heard"])
    return _sentence(forms[int(rng.integers(len(forms)))])


def verbless(caption: str, others: Sequence[str], rng: np.random.Generator) -> str | None:
    """Only the nouns that follow an article, listed: "dog, rain, bell"."""
    nouns = _nouns(_words(caption))
    if not nouns:
        return None
    joiner = (", ", " ", " and ")[int(rng.integers(3))]
    return _sentence([joiner.join(nouns)])


def other_clip(caption: str, others: Sequence[str], rng: np.random.Generator) -> str | None:
    """A fluent caption written for another clip."""
    return str(others[int(rng.integers(len(others)))]) if others else None


def add_other_sound(caption: str, others: Sequence[str], rng: np.random.Generator) -> str | None:
    """Add the first clause of another clip's caption as a second sound ("... while a siren wails")."""
    if not others:
        return None
    other = _words(str(others[int(rng.integers(len(others)))]))
    clause = re.split(r"\b(?:and|while|as|followed|then|with|before|after)\b|,", " ".join(other), maxsplit=1)[0]
    clause = clause.strip()
    if not clause:
        return None
    connective = CONNECTIVES[int(rng.integers(len(CONNECTIVES)))]
    return _sentence([*_words(caption), connective, clause[:1].lower() + clause[1:]])


def shuffle(caption: str, others: Sequence[str], rng: np.random.Generator) -> str | None:
    """The same words in a random order."""
    words = _words(caption)
    return _sentence([words[k] for k in rng.permutation(len(words))]) if len(words) >= 3 else None


_BY_NAME: dict[str, Perturbation] = {"cut_off": cut_off, "repeat": repeat, "negate": negate, "verbless": verbless,
                                     "other_clip": other_clip, "add_other_sound": add_other_sound, "shuffle": shuffle}


def perturb_by_name(kind: str, caption: str, others: Sequence[str], rng: np.random.Generator) -> str | None:
    """One named perturbation; None when it does not apply to the caption."""
    return _BY_NAME[kind](caption, others, rng)


def perturb(caption: str, others: Sequence[str], rng: np.random.Generator) -> tuple[str, str] | None:
    """(kind, damaged caption) for a random applicable perturbation; None when none changes the caption.
    `others` are captions of other clips (for `other_clip` and `add_other_sound`)."""
    for k in rng.permutation(len(PERTURBATIONS)):
        kind = PERTURBATIONS[k]
        damaged = perturb_by_name(kind, caption, others, rng)
        if damaged and damaged.strip().lower().rstrip(".") != caption.strip().lower().rstrip("."):
            return kind, damaged
    return None
