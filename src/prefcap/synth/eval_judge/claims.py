"""What a caption claims: the sounds it names, what it says of each, and which it says are absent.

A *mention* is one sound named: a source ("a siren"), a person and what they do ("someone knocks"), a verb with
no source ("it rains"), or an unknown noun where a source would stand ("a blorf hums"). To each belong the
attributes said of it, whether the caption denies it ("no rain", "the siren cannot be heard") and whether it is
only a comparison ("like a drum").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefcap.synth.eval_judge import vocabulary as vocab
from prefcap.synth.eval_judge.words import AUX, CLAUSE_BREAKS, Word, clause, previous_content

# "no X" and "without X" reach forward; "not", "cannot", "absent" cover their clause.
_FORWARD_NEGATORS = frozenset({"no", "without", "neither", "nor", "none"})
_VERBAL_NEGATORS = frozenset({"not", "n't", "never", "cannot", "absent", "missing"})
# Words that continue a list of sources a forward negation covers ("no siren, bell or rain").
_CONTINUES_LIST = frozenset({",", "or", "nor", "and", "any", "even", "a", "an", "the", "some"})


@dataclass
class Mention:
    """One sound the caption names."""

    sense: vocab.Sense
    start: int  # word positions
    end: int
    negated: bool = False
    background: bool = False
    attributes: dict[str, set[str]] = field(default_factory=dict)


def find_mentions(words: list[Word]) -> list[Mention]:
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
                    w.text in CLAUSE_BREAKS - {","} for w in words[last.end:i]):
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


def _is_listener(words: list[Word], i: int) -> bool:
    """"you can hear", "we hear", "someone listens": the person is the listener, not a sound."""
    return words[i].text in ("you", "we", "i", "one") or any(
        w.lemma in ("hear", "listen", "notice") for w in words[i + 1:i + 3])


def _owner(words: list[Word], i: int) -> int | None:
    """The noun a verb belongs to: the nearest preceding noun phrase in its clause, or for the second of two
    verbs joined by "and" ("birds chirp and sing"), the first one's."""
    j = previous_content(words, i)
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


def _has_object(words: list[Word], verb: int) -> bool:
    for word in words[verb + 1:verb + 4]:
        if word.role in ("det", "attr", "modifier"):
            continue
        return word.role == "source"
    return False


def _verb_of(words: list[Word], i: int) -> int | None:
    for j in range(i + 1, min(len(words), i + 5)):
        if words[j].role in ("verb", "generic-verb"):
            return j
        if words[j].role in ("punct", "source", "agent") or words[j].text in CLAUSE_BREAKS:
            return None
    return None


def _source_position(words: list[Word], i: int) -> bool:
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


def _merge_compounds(words: list[Word], mentions: list[Mention]) -> list[Mention]:
    """Adjacent nouns of overlapping meaning are one source ("a siren wail"); of different meaning they are a
    list ("piano whistle"), flagged as a list by the reading."""
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


def attach_attributes(words: list[Word], mentions: list[Mention]) -> None:
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
            while k >= 0 and (words[k].role in ("det", "generic-verb") or words[k].text in AUX | {"at", "with", "in"}
                              or words[k].pos == "ADV" and words[k].text not in CLAUSE_BREAKS):
                k -= 1
            owner = next((m for m in mentions if m.start <= k < m.end), None)
        else:
            k = i - 1
            while k >= 0 and (words[k].role in ("attr", "generic-verb") or words[k].text in AUX
                              or words[k].pos == "VERB" and words[k].role in ("other", "noun")
                              or words[k].pos == "ADV" and words[k].text not in CLAUSE_BREAKS
                              or words[k].tag == "RP" or words[k].text in ("off", "away", "up", "down", "by", "past")):
                k -= 1
            owner = next((m for m in mentions if m.start <= k < m.end), None)
        if owner is not None:
            owner.attributes.setdefault(attribute, set()).add(value)



def negate(words: list[Word], mentions: list[Mention]) -> None:
    """Which mentions the caption says are absent: "no X (or Y)", "without X", "neither X nor Y", "the absence
    of X" reach forward over a list of sources, "instead of X" / "rather than X" over one; "X cannot be heard",
    "I don't hear X", "X is absent" cover their clause. A verbal and a forward negation in one clause cancel
    ("not without rain", "one cannot say there is no siren"), as do two verbal ones ("is not absent")."""
    at = {m.start: m for m in mentions}
    for i, word in enumerate(words):
        start, end = clause(words, i)
        texts = [w.text for w in words[start:end]]
        verbal = sum(t in _VERBAL_NEGATORS for t in texts)
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
            if verbal > 1 or any(t in _FORWARD_NEGATORS for t in texts):
                continue
            for mention in mentions:
                if start <= mention.start < end and not _after_relation(words, i, mention.start):
                    mention.negated = True


def drop_comparisons(words: list[Word], mentions: list[Mention]) -> list[Mention]:
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


def _ends_negation(words: list[Word], j: int, first: bool) -> bool:
    """Whether a forward negation stops at word j: at a verb or the end of its clause, or at any word that does
    not continue a list of sources ("no siren, bell or rain")."""
    word = words[j]
    if word.role == "punct" and word.text != ",":
        return True
    if word.text in CLAUSE_BREAKS - {",", "and"}:
        return True
    if first:
        return False
    if word.role in ("verb", "generic-verb") and word.lemma != "be":
        return True
    return word.text not in _CONTINUES_LIST and word.role not in ("attr", "det", "other", "part", "modifier",
                                                                   "neutral")


def _after_relation(words: list[Word], negation: int, position: int) -> bool:
    """A mention after a relation word in the same stretch ("X cannot be heard before Y") is not negated."""
    lo, hi = sorted((negation, position))
    return any(w.text in vocab.FORWARD | vocab.BACKWARD | vocab.TOGETHER for w in words[lo:hi])


def comparisons(words: list[Word], mentions: list[Mention]) -> list[tuple[int, str, str, int]]:
    """"X is louder than Y": (X's mention, attribute, the value claimed for X, Y's mention)."""
    found = []
    for i, word in enumerate(words[:-1]):
        if word.text in vocab.COMPARATIVES and words[i + 1].text == "than":
            before = [k for k, m in enumerate(mentions) if m.end <= i and not m.negated]
            after = [k for k, m in enumerate(mentions) if m.start > i + 1 and not m.negated]
            if before and after:
                found.append((before[-1], *vocab.COMPARATIVES[word.text], after[0]))
    return found
