"""Caption text statistics: the words of a caption, its fluency signals and the degeneration signals of a set of
captions. Plain word rules, no tagger and no model: they run on every RL sample, and the reward model, RL and
evaluation all count words the same way through this module.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np

# A truncated ending is a caption that stops where a listener still waits for a word (`_is_truncated`). Plain word
# rules, no tagger: they run on every RL sample. Determiners, quantifiers and possessives need a noun after them.
_DETERMINERS = frozenset({"a", "an", "the", "some", "any", "this", "that", "these", "those", "each", "every",
                          "another", "several", "its", "their", "his", "her", "my", "your", "our", "no"})
# Auxiliaries and modals need a verb or complement after them ("a siren can be", "the bell is").
_AUXILIARIES = frozenset({"can", "could", "will", "would", "may", "might", "must", "should", "is", "are", "was",
                          "were", "be", "been", "being", "has", "have", "had"})
# Degree words that cannot end a caption ("a very"); "so" and "too" have exceptions (`_COMPLETE_AFTER`, "too").
_DEGREE_WORDS = frozenset({"very", "quite", "rather", "so", "too"})
# Words that cannot end a well-formed caption: the three sets above, conjunctions, and prepositions that are not
# also verb particles. "by", "in", "on" are left out on purpose ("a car passes by", "someone walks in", "water is
# turned on" are complete); "by" counts only after the participles of `_DANGLING_BIGRAMS`.
_DANGLING_WORDS = _DETERMINERS | _AUXILIARIES | _DEGREE_WORDS | frozenset({
    "and", "or", "but", "nor", "then", "while", "as", "than", "whereas", "because", "of", "with", "to", "from",
    "for", "at", "into", "onto",
})
_DANGLING_BIGRAMS = frozenset({("followed", "by"), ("accompanied", "by"), ("interrupted", "by"), ("preceded", "by"),
                               ("joined", "by")})
_COMPLETE_BIGRAMS = frozenset({("a", "while")})  # "for a while", "after a while"
_PREPOSITIONS = frozenset({"to", "for", "with", "at", "from", "of", "by", "in", "on", "into", "onto", "about",
                           "after", "before", "behind", "around", "near", "beside", "towards", "toward", "like",
                           "than", "past", "over", "under", "through", "without", "against", "among", "between"})
# The nouns "can" follows when it is a container ("a pop can", "a spray can"), not a modal.
_CAN_NOUNS = frozenset({"pop", "soda", "tin", "trash", "garbage", "spray", "beer", "paint", "aluminum", "aluminium",
                        "metal", "watering", "oil", "aerosol", "coke", "soup", "food", "drink", "gas", "petrol",
                        "empty", "old"}) | _DETERMINERS
# A dangling word is complete after these words: "one another", "one after another", "a minute or so", "a human
# being", "for her" / "to her" (the object pronoun, not the possessive), "a pop can".
_COMPLETE_AFTER = {"another": frozenset({"one", "after"}), "so": frozenset({"or"}),
                   "being": frozenset({"human", "well"}), "her": _PREPOSITIONS, "can": _CAN_NOUNS}
# "too" dangles only after these ("the sound is too", "much too"); elsewhere it means "also" ("a cat meows too").
_TOO_DANGLES_AFTER = _AUXILIARIES | _DEGREE_WORDS | frozenset({"much", "far", "way", "not"})
# Adjectives typical in audio captions: after a determiner and with no noun after them, the phrase is cut off ("the
# sound of a high", "a very loud"). Any word ending in "pitched" / "sounding" counts too (the word pattern splits
# "high-pitched" into "high", "pitched"). Words that are also nouns or adverbial phrases ("the light", "a little")
# and words often used as nouns after "the" ("in the dark", "in the open", "as a whole") are left out.
_ADJECTIVES = frozenset({
    "loud", "soft", "quiet", "faint", "high", "low", "deep", "fast", "slow", "rapid", "quick", "distant", "steady",
    "constant", "continuous", "short", "long", "sharp", "heavy", "gentle", "large", "small", "big", "tiny", "huge",
    "massive", "electronic", "electric", "electrical", "metallic", "mechanical", "digital", "repeated", "repetitive",
    "rhythmic", "muffled", "distorted", "shrill", "harsh", "dull", "hollow", "brief", "sudden", "intermittent",
    "periodic", "occasional", "frequent", "regular", "irregular", "random", "strong", "weak", "powerful", "slight",
    "subtle", "clear", "crisp", "smooth", "rough", "thick", "thin", "busy", "noisy", "crowded", "empty", "nearby",
    "outdoor", "indoor", "underwater", "wooden", "squeaky", "creaky", "multiple", "various", "numerous",
    "different", "entire", "new", "old", "silent", "calm", "peaceful", "eerie", "strange", "weird", "unusual",
})
# Adverbs of degree that may stand inside such a run ("a very loud", "the rather faint").
_INTENSIFIERS = _DEGREE_WORDS | frozenset({"extremely", "really", "fairly", "pretty", "somewhat", "slightly",
                                           "incredibly"})
# The determiners that make a run of adjectives dangle: not "this" / "that", which are also degree adverbs ("it is
# not that loud").
_ADJECTIVE_DETERMINERS = _DETERMINERS - {"this", "that"}
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def diversity_stats(captions: Sequence[str]) -> dict[str, float]:
    """Degeneration signals of a set of captions (no references needed), on lowercase words.

    Words are maximal runs of letters and digits (inner apostrophes kept: "it's"); punctuation is dropped.
    - `distinct_1`, `distinct_2`: unique n-grams / total n-grams over the whole set (n-grams never cross captions);
      0.0 when the set has no n-gram.
    - `repetition_rate`: share of captions with an immediately repeated word (w_i = w_i+1) or a word bigram that
      occurs at least twice in the caption (overlaps count). Note "a dog barks and a dog growls" counts.
    - `mean_words`: mean words per caption; `vocab_size`: number of distinct words over the set.
    - `truncated_ending_rate`: share of captions that stop where a listener still waits for a word: the last word
      is a determiner, quantifier or possessive ("a", "the", "some", "every", "this", "their", "no"), an auxiliary
      or modal ("is", "can", "be", "has"), "very" / "quite" / "rather" / "so" / "too", a conjunction or a
      non-particle preposition ("and", "then", "while", "with", "of", "to"); or the caption ends in "followed
      by"-like phrases; or it ends on one or more adjectives (a curated list of audio-caption adjectives, plus any
      word ending in "pitched" / "sounding") and degree words right after a determiner, with no noun after them
      ("the sound of a high", "a very loud"). Complete, and not counted: "by" / "in" / "on" alone ("a car passes
      by"), "a while", "one another", "or so", "a human being", "her" after a preposition ("for her"), "can" after
      a container noun ("a pop can"), "too" meaning "also" ("a cat meows too"), and an adjective after a verb (a
      complement: "the rain is loud", "it is quiet"). See `_DANGLING_WORDS` and the sets around it.
    """
    if not captions:
        raise ValueError("diversity_stats: no captions given")
    words = [_WORD.findall(c.lower()) for c in captions]
    return {
        "distinct_1": _distinct(words, 1),
        "distinct_2": _distinct(words, 2),
        "repetition_rate": float(np.mean([_is_repetitive(w) for w in words])),
        "mean_words": float(np.mean([len(w) for w in words])),
        "vocab_size": len({t for w in words for t in w}),
        "truncated_ending_rate": float(np.mean([_is_truncated(w) for w in words])),
    }


# words that may repeat as a pair without it being a stutter ("in the ... in the")
FILLER_WORDS = frozenset({"a", "an", "the", "and", "of", "in", "on", "with", "is", "are", "be", "can", "heard", "as",
                     "while", "then", "by", "to", "at", "it", "its", "there", "sound", "sounds"})
FLUENCY_FEATURES = ("stutters", "repeated_bigrams", "truncated", "words", "malformed_words", "function_words",
                    "negations")
NEGATIONS = frozenset({"no", "not", "without", "neither", "nor", "never", "cannot", "none", "nothing"})
# closed-class English words: a sentence has some (articles, auxiliaries, prepositions, conjunctions, pronouns), a
# bare list of nouns has none
FUNCTION_WORDS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "some", "any", "no", "another", "other", "each", "every",
    "is", "are", "was", "were", "be", "been", "being", "am", "can", "could", "may", "might", "will", "would", "has",
    "have", "had", "does", "do", "did", "of", "in", "on", "at", "by", "with", "without", "from", "to", "into",
    "onto", "over", "under", "through", "across", "behind", "near", "after", "before", "during", "while", "as",
    "and", "or", "but", "nor", "then", "than", "when", "until", "it", "its", "they", "their", "he", "she", "his",
    "her", "someone", "something", "there", "here", "not"})


def fluency_profile(caption: str) -> tuple[float, ...]:
    """Cheap, language-only signals of a degenerate caption, named by FLUENCY_FEATURES: immediate repeats of
    1–4 words ("can be can be"), content bigrams said twice, a truncated ending (as in `diversity_stats`), length
    in words / 20, the share of space-separated tokens that are not words (broken bytes, stray symbols), and the
    share of words that are function words (near 0 for a verbless list of nouns, "dog, rain, bell"), and the
    number of negation words ("no", "not", "without", "can't", ...): a caption that denies sounds."""
    words = _WORD.findall(caption.lower())
    stutters = sum(words[i : i + n] == words[i + n : i + 2 * n]
                   for n in range(1, 5) for i in range(len(words) - 2 * n + 1))
    bigrams = [(a, b) for a, b in itertools.pairwise(words) if a != b and not (a in FILLER_WORDS and b in FILLER_WORDS)]
    tokens = caption.split()
    malformed = sum(not re.fullmatch(r"[^\W\d_]+(?:['-][^\W\d_]+)*[.,!?;:]*", t) for t in tokens)
    function = sum(w in FUNCTION_WORDS for w in words)
    return (float(stutters), float(len(bigrams) - len(set(bigrams))), float(_is_truncated(words)),
            len(words) / 20, malformed / max(1, len(tokens)), function / max(1, len(words)),
            float(sum(w in NEGATIONS or w.endswith("n't") for w in words)))


def caption_words(caption: str) -> list[str]:
    """The lowercase words of a caption, as every statistic here counts them."""
    return _WORD.findall(caption.lower())


def has_truncated_ending(caption: str) -> bool:
    """Whether the caption stops where a listener still waits for a word ("... followed by", "... with a",
    "a siren can be", "the sound of a high"): the rules of `diversity_stats`' `truncated_ending_rate`."""
    return _is_truncated(caption_words(caption))


def _distinct(words: list[list[str]], n: int) -> float:
    grams = [tuple(w[k:k + n]) for w in words for k in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _is_repetitive(words: list[str]) -> bool:
    bigrams = list(itertools.pairwise(words))
    return any(a == b for a, b in bigrams) or len(set(bigrams)) < len(bigrams)


def _is_truncated(words: list[str]) -> bool:
    """The rules of `diversity_stats`' `truncated_ending_rate`, on lowercase words."""
    if not words:
        return False
    last, before = words[-1], words[-2] if len(words) > 1 else ""
    if (before, last) in _COMPLETE_BIGRAMS:
        return False
    if (before, last) in _DANGLING_BIGRAMS:
        return True
    if last == "too":
        return before in _TOO_DANGLES_AFTER
    if last in _DANGLING_WORDS:
        return before not in _COMPLETE_AFTER.get(last, ())
    return _ends_on_dangling_adjectives(words)


def _is_adjective(word: str) -> bool:
    return word in _ADJECTIVES or word.endswith(("pitched", "sounding"))


def _ends_on_dangling_adjectives(words: list[str]) -> bool:
    """Whether the caption ends on a run of adjectives and degree words (joined by "and" / "or" at most) that
    starts right after a determiner: "a very loud", "the sound of a high", "a loud and high-pitched"."""
    start = len(words) - 1
    if not _is_adjective(words[start]):
        return False
    while start > 0 and (_is_adjective(words[start - 1]) or words[start - 1] in _INTENSIFIERS
                         or words[start - 1] in ("and", "or")):
        start -= 1
    return start > 0 and words[start] not in ("and", "or") and words[start - 1] in _ADJECTIVE_DETERMINERS
