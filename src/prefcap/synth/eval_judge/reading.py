"""Reading a caption the way a careful listener does: `read_caption` -> `Reading`.

What comes out: every sound the caption names (`claims.Mention`: what it may be, whether it is denied, its
attributes, whether it is in the background), the order and simultaneity stated between them (`relations.py`),
and what a listener notices in its form — a list of words instead of a sentence, a sentence that stops
mid-phrase, repeated words or sounds, words that are not English, broken syntax. The words and their roles come
from `words.py` (spaCy and the judge's vocabulary).
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field

from prefcap.synth.eval_judge import vocabulary as vocab
from prefcap.synth.eval_judge.claims import (
    Mention,
    attach_attributes,
    comparisons,
    drop_comparisons,
    find_mentions,
    negate,
)
from prefcap.synth.eval_judge.relations import has_phrase, stated_relations
from prefcap.synth.eval_judge.words import AUX, CLAUSE_BREAKS, DETERMINERS, Word, classify, words_of

# Words after which a caption is unfinished.
_UNFINISHED = DETERMINERS - {"that", "this", "several", "many", "few"} | AUX | frozenset({
    "and", "or", "nor", "but", "then", "while", "as", "with", "of", "to", "from", "for", "at", "into", "onto",
    "than", "before", "after", "whereas", "because", "very", "quite", "rather", "so", "too"})
_PARTICLE_VERBS = frozenset({"pass", "go", "drive", "walk", "run", "fly", "turn", "come", "move", "ride", "zoom",
                             "race", "speed", "rush", "roll", "die", "fade", "hurry"})
_SHORT_WORDS = frozenset({"up", "by", "in", "on", "tv", "ok", "go", "me", "us", "it", "do", "so", "no", "to", "of",
                          "at", "as", "an", "or", "is", "be", "he", "we", "am", "oh", "hi", "ha"})
_FILLER = frozenset({"a", "an", "the", "and", "of", "in", "on", "with", "is", "are", "be", "can", "heard", "as",
                     "while", "then", "by", "to", "at", "it", "there", "sound", "sounds", "followed", "before",
                     "after", "same", "time", "together", "background", ",", "."})


@dataclass
class Reading:
    words: list[str]
    mentions: list[Mention]
    order: set[tuple[int, int]]  # (earlier mention, later mention) as stated
    together: set[frozenset[int]]  # mentions stated to sound at the same time
    claims_silence: bool  # "silence", "nothing can be heard" with no sound named
    has_verb: bool
    list_faults: int  # words juxtaposed as a list ("piano whistle", "siren, bells, rain")
    truncated: bool
    stutters: int  # repeated words and phrases
    grammar_faults: int
    non_words: int  # words that are not English
    misspelled: int = 0  # words read as the vocabulary word they are a typo of ("sirne")
    exclusive: bool = False  # says nothing else is heard ("only a siren", "nothing else")
    hedged: bool = False  # "maybe", "perhaps", a question
    comparisons: list[tuple[int, str, str, int]] = field(default_factory=list)  # X "louder than" Y: (X, attr, value, Y)

    @property
    def n_words(self) -> int:
        return sum(w.isalnum() or "-" in w or "'" in w for w in self.words)

    @property
    def verbless_list(self) -> bool:
        return self.list_faults > 0 and not self.has_verb


def _list_faults(words: list[Word], mentions: list[Mention], has_verb: bool) -> int:
    """Sources strung together without syntax: juxtaposed ("piano whistle", "drums knocking wind"), or a verbless
    caption of comma-separated names or one-word sentences ("siren, bells, rain", "Engine. Birds.")."""
    faults = 0
    for first, second in zip(mentions, mentions[1:], strict=False):
        gap = words[first.end:second.start]
        juxtaposed = not gap and set(first.sense.concepts) != set(second.sense.concepts)
        punctuated = not has_verb and gap and all(w.role == "punct" for w in gap)
        faults += juxtaposed or punctuated
    return faults


def _truncated(words: list[Word]) -> bool:
    """Stops mid-phrase: on an article, conjunction, preposition without its object, auxiliary, relation word,
    or on adjectives after an article with no noun ("the sound of a high")."""
    content = [w for w in words if w.role != "punct"]
    if not content:
        return False
    last = content[-1]
    if last.role == "non-word" or (len(last.text) <= 2 and last.text.isalpha() and last.text not in _SHORT_WORDS):
        return True  # a word cut off: "and a mu"
    if last.text in _UNFINISHED and last.text not in ("in", "on", "by", "off", "out", "away", "up", "down",
                                                      "along", "around", "over", "past"):
        return True
    if tuple(w.text for w in content[-2:]) in (("followed", "by"), ("preceded", "by"), ("accompanied", "by"),
                                                ("interrupted", "by"), ("joined", "by"), ("replaced", "by")):
        return True
    if last.text in ("followed", "preceded", "accompanied", "interrupted", "joined", "replaced"):
        return True
    if last.pos == "ADP" or last.text in ("in", "on", "by", "at", "of", "over"):
        previous = content[-2] if len(content) > 1 else None
        return not (previous is not None and previous.lemma in _PARTICLE_VERBS or last.tag == "RP")
    if last.role == "attr" or (last.pos == "ADJ" and last.role in ("other", "noun")):
        k = len(content) - 1
        while k > 0 and (content[k - 1].role == "attr" or content[k - 1].pos in ("ADJ", "ADV")
                         and content[k - 1].text not in AUX):
            k -= 1
        return k > 0 and content[k - 1].role == "det" or (k > 0 and content[k - 1].text in ("of", "with", "and"))
    return False


def _stutters(words: list[Word], mentions: list[Mention]) -> int:
    """Immediate repeats of one to four words, content bigrams said twice, and the same sound named twice."""
    # a sound said twice in one vocabulary phrase ("beep beep") is one sound, not a repeat
    texts = [w.text for k, w in enumerate(words) if w.role != "punct" and not (
        k and w.text == words[k - 1].text and (w.role == "part" or w.lemma in vocab.ONOMATOPOEIA))]
    repeats = sum(texts[i:i + n] == texts[i + n:i + 2 * n] for n in range(1, 5) for i in range(len(texts) - 2 * n + 1))
    content = [t for t in texts if t not in _FILLER | AUX | DETERMINERS and t not in vocab.ATTRIBUTE_WORDS]
    bigrams = Counter((a, b) for a, b in zip(texts, texts[1:], strict=False)
                      if a != b and a in content and b in content)
    repeats += sum(count - 1 for count in bigrams.values())
    named = [tuple(sorted(m.sense.concepts)) for m in mentions if not m.negated]
    return repeats + len(named) - len(set(named))


def _grammar_faults(words: list[Word]) -> int:
    """A determiner not followed by a noun phrase, a caption opening on a conjunction, a sound verb followed
    directly by another source."""
    faults = 0
    content = [w for w in words if w.role != "punct"]
    if content and content[0].text in ("and", "or", "then", "followed", "but", "nor"):
        faults += 1
    for i, word in enumerate(words[:-1]):
        following = words[i + 1]
        if word.role == "det" and word.text not in ("that", "this", "no", "any") and (
                following.role in ("punct", "det", "generic-verb", "neg") or following.text in CLAUSE_BREAKS):
            faults += 1
        if word.role == "verb" and following.role == "source" and not word.text.endswith("ing"):
            faults += 1
    return faults


@functools.lru_cache(maxsize=100_000)
def read_caption(text: str) -> Reading:
    """The careful listener's reading of one caption (cached by text)."""
    words = words_of(text)
    classify(words)
    mentions = drop_comparisons(words, find_mentions(words))
    attach_attributes(words, mentions)
    negate(words, mentions)
    order, together = stated_relations(words, mentions)
    has_verb = any(w.role in ("verb",) or (w.role == "generic-verb" and w.text not in AUX | {"there"}) or
                   w.text in AUX for w in words)
    list_faults = _list_faults(words, mentions, has_verb)
    if mentions and not has_verb and not any(w.role == "det" or w.pos == "ADP" for w in words):
        list_faults += 1  # a bare fragment: "piano music", "Drums and bells."
    silence = not any(not m.negated for m in mentions) and (
        any(w.lemma in vocab.SILENCE_WORDS - {"quiet"} for w in words)
        or any(w.text == "no" and i + 1 < len(words) and words[i + 1].lemma in ("sound", "noise")
               for i, w in enumerate(words)))
    return Reading(
        words=[w.text for w in words],
        mentions=mentions,
        order=order,
        together=together,
        claims_silence=silence,
        has_verb=has_verb,
        list_faults=list_faults,
        truncated=_truncated(words),
        stutters=_stutters(words, mentions),
        grammar_faults=_grammar_faults(words),
        non_words=sum(w.role == "non-word" for w in words),
        misspelled=sum(w.misspelled for w in words),
        exclusive=has_phrase(words, vocab.EXCLUSIVE_PHRASES),
        hedged=any(w.text in vocab.HEDGES for w in words),
        comparisons=comparisons(words, mentions),
    )
