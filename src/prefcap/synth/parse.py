"""Reading a caption back into what it claims, with the corpus lexicon.

The parser is deliberately forgiving about word order (machine captions are not grammar output) and
strict about meaning: which events are named, which attributes attach to them, what happens before
what, what is in the background — plus the fluency faults a listener notices (stutters, a sentence that
stops on "followed by", broken grammar, absurd length).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from prefcap.synth.lexicon import (
    ADJECTIVES,
    ATTRIBUTE_WORDS,
    CLASSES,
    CLAUSE_CLOSERS,
    CLAUSE_NEGATORS,
    CONNECTIVES,
    DETERMINERS,
    FORWARD_NEGATORS,
    FUNCTION_WORDS,
    KEYWORDS,
    OTHER_SOUND_VERBS,
    OTHER_SOURCES,
    OTHER_VERBS,
    SILENCE,
)

_SEQUENCE_FORWARD = {"then", "followed", "before"}
_SIMULTANEOUS = {"while", "as", "with"}
_TOGETHER = {"together", "simultaneously", "same"}
_CAN_FOLLOW_DETERMINER = {"sound", "same", "background"}
# Connective pairs that read fine; words that close a clause may be followed by any connective.
_CONNECTIVE_BIGRAMS = {("followed", "by"), ("and", "then"), ("same", "time"), ("as", "in"), ("while", "in"),
                       ("with", "in")}
_DANGLING = (CONNECTIVES - CLAUSE_CLOSERS) | DETERMINERS | {
    "can", "be", "is", "are", "of"}


@dataclass
class MentionSpan:
    cls: str  # a scene class, or "other:<group>" for a source outside them ("dogs", "people")
    start: int
    end: int
    attributes: dict[str, set[str]] = field(default_factory=dict)
    background: bool = False
    negated: bool = False  # the caption says it is absent ("no rain", "the siren cannot be heard")
    has_verb: bool = False  # a verb joined the noun ("a siren wails")
    modifier_only: bool = False  # only a verb form so far ("blaring"): a noun right after it is its source


@dataclass
class ParsedCaption:
    tokens: list[str]
    mentions: list[MentionSpan]
    before: set[tuple[str, str]]  # (earlier class, later class) as stated
    together: set[frozenset[str]]  # pairs stated to happen at the same time
    repetitions: int
    truncated: bool
    grammar_issues: int
    word_list: bool = False  # names strung together without a verb ("piano whistle", "siren, bells, rain")
    silence: bool = False  # says nothing is heard ("silence") and names no sound
    exclusive: bool = False  # says nothing else is heard ("only a siren", "nothing else")
    comparisons: list[tuple[str, str, str, str]] = field(default_factory=list)  # "X is louder than Y"

    @property
    def classes(self) -> set[str]:
        """What the caption says is there."""
        return {m.cls for m in self.mentions if not m.negated}

    @property
    def denied(self) -> set[str]:
        """What the caption says is absent."""
        return {m.cls for m in self.mentions if m.negated}

    @property
    def background(self) -> set[str]:
        return {m.cls for m in self.mentions if m.background and not m.negated}

    @property
    def n_words(self) -> int:
        return sum(t not in _PUNCTUATION for t in self.tokens)

    def attributes_of(self, cls: str) -> dict[str, set[str]]:
        merged: dict[str, set[str]] = {}
        for mention in self.mentions:
            if mention.cls == cls and not mention.negated:
                for attribute, values in mention.attributes.items():
                    merged.setdefault(attribute, set()).update(values)
        return merged


_PUNCTUATION = (",", ".")  # tokens that are not words; "." only between sentences


def tokenize(text: str) -> list[str]:
    text = re.sub(r"[.!?;]+", " . ", text.lower().strip().rstrip(".!?; ")).replace(",", " , ")
    return re.sub(r"[^a-z0-9,.' -]+", " ", text).split()


_BETWEEN_NOUN_AND_VERB = set(ATTRIBUTE_WORDS) | {"is", "are"}


def _find_mentions(tokens: list[str]) -> list[MentionSpan]:
    """Greedy longest-keyword matching, then sources outside the classes. A verb right after a source joins its
    mention whatever class it belongs to ("a siren blaring" is a siren, "dogs bark" one source)."""
    mentions: list[MentionSpan] = []
    i = 0
    while i < len(tokens):
        match = next(((len(phrase), cls, is_noun) for phrase, cls, is_noun in KEYWORDS
                      if tuple(tokens[i : i + len(phrase)]) == phrase), None)
        if match is None and tokens[i] in OTHER_SOURCES:
            match = (1, f"other:{OTHER_SOURCES[tokens[i]]}", tokens[i] not in OTHER_SOUND_VERBS)
        if match is None:
            i += 1
            continue
        length, cls, is_noun = match
        previous = mentions[-1] if mentions else None
        between = tokens[previous.end : i] if previous else []
        if previous and (not is_noun or cls == previous.cls) and all(t in _BETWEEN_NOUN_AND_VERB for t in between):
            previous.end = i + length  # "a siren wails", "bells chime", "a clock ticking"
            previous.has_verb = previous.has_verb or not is_noun or cls == previous.cls
        elif previous and is_noun and previous.modifier_only and (not between or cls == previous.cls) and all(
                t in DETERMINERS or t in ATTRIBUTE_WORDS for t in between):
            # "a blaring alarm", "plays the piano": the noun names the source
            mentions[-1] = MentionSpan(cls, previous.start, i + length, has_verb=True)
        elif previous and is_noun and not between and previous.cls.startswith("other:") and not previous.has_verb \
                and not cls.startswith("other:"):
            mentions[-1] = MentionSpan(cls, previous.start, i + length)  # "a police car siren": the siren
        else:
            mentions.append(MentionSpan(cls, i, i + length, modifier_only=not is_noun))
        i += length
    return mentions


_NEGATION_CONTINUES = {",", "or", "nor", "and", "any", "a", "an", "the", "some"} | set(ATTRIBUTE_WORDS)
_CLAUSE_ENDS = (CONNECTIVES - {"of", "on", "to", "by", "the"}) | {"but", "."}


def _clause_span(tokens: list[str], position: int) -> tuple[int, int]:
    start = max((k + 1 for k in range(position) if tokens[k] in _CLAUSE_ENDS), default=0)
    end = next((k for k in range(position + 1, len(tokens)) if tokens[k] in _CLAUSE_ENDS), len(tokens))
    return start, end


def _negate(tokens: list[str], mentions: list[MentionSpan]) -> None:
    """"no X (or Y)", "without X", "neither X nor Y" deny what follows them, "instead of X", "rather than X" the
    next source; "not", "never", "cannot", "n't", "absent", "missing" deny the mentions of their clause ("the
    siren cannot be heard"). Two negations in one clause cancel out ("not without rain", "is not absent")."""
    for position, token in enumerate(tokens):
        start, end = _clause_span(tokens, position)
        negations = sum(t in FORWARD_NEGATORS | CLAUSE_NEGATORS or t.endswith("n't") for t in tokens[start:end])
        if negations > 1 and token not in ("no", "neither", "nor"):
            continue
        if token in FORWARD_NEGATORS or tokens[position : position + 2] in (["instead", "of"], ["rather", "than"]):
            one_source = token in ("instead", "rather")
            cursor = position + (2 if one_source else 1)
            for mention in (m for m in mentions if m.start >= cursor):
                if any(t not in _NEGATION_CONTINUES and (t in _CLAUSE_ENDS or t in _VERBS)
                       for t in tokens[cursor : mention.start]) or (one_source and "," in tokens[cursor:mention.start]):
                    break
                mention.negated = True
                cursor = mention.end
        elif token in CLAUSE_NEGATORS or token.endswith("n't"):
            for mention in mentions:
                if start <= mention.start < end:
                    mention.negated = True


def _drop_comparisons(tokens: list[str], mentions: list[MentionSpan]) -> list[MentionSpan]:
    """"A siren wails like a drum": the drum is a comparison, not a sound of the clip. A source after "like",
    "reminiscent of", "resembling", "similar to" is dropped when its clause already names a sound."""
    kept: list[MentionSpan] = []
    for mention in mentions:
        before = [t for t in tokens[: mention.start] if t not in DETERMINERS and t not in ATTRIBUTE_WORDS]
        compared = bool(before) and (before[-1] in ("like", "resembling") or before[-2:] in (
            ["reminiscent", "of"], ["similar", "to"]))
        start, _ = _clause_span(tokens, mention.start)
        if compared and any(start <= m.start < mention.start for m in kept):
            continue
        kept.append(mention)
    return kept


def _attach_attributes(tokens: list[str], mentions: list[MentionSpan]) -> None:
    """An attribute word belongs to the noun it precedes (adjective) or the verb it follows (adverb)."""
    for position, token in enumerate(tokens):
        if token not in ATTRIBUTE_WORDS:
            continue
        attribute, value = ATTRIBUTE_WORDS[token]
        following = next((m for m in mentions if m.start > position), None)
        preceding = next((m for m in reversed(mentions) if m.end <= position), None)
        owner = None
        if following and all(
            t in ATTRIBUTE_WORDS or t in DETERMINERS for t in tokens[position + 1 : following.start]
        ) and token in {w for values in ADJECTIVES[attribute].values() for w in values}:
            owner = following
        elif preceding and not any(t in CONNECTIVES or t == "." for t in tokens[preceding.end : position]):
            owner = preceding
        if owner:
            owner.attributes.setdefault(attribute, set()).add(value)


def _mark_background(tokens: list[str], mentions: list[MentionSpan]) -> None:
    for position in range(len(tokens) - 2):
        if tokens[position : position + 3] != ["in", "the", "background"]:
            continue
        preceding = next((m for m in reversed(mentions) if m.end <= position), None)
        if preceding and not any(t in CONNECTIVES or t == "." for t in tokens[preceding.end : position]):
            preceding.background = True
            continue
        following = next((m for m in mentions if m.start > position), None)
        if following:
            following.background = True


def _relations(tokens: list[str], mentions: list[MentionSpan]):
    mentions = [m for m in mentions if not m.negated]
    before: set[tuple[str, str]] = set()
    together: set[frozenset[str]] = set()
    lead = set(tokens[: mentions[0].start]) if mentions else set()
    for k, (first, second) in enumerate(zip(mentions, mentions[1:], strict=False)):
        if first.background or second.background or first.cls == second.cls:
            continue
        gap = set(tokens[first.end : second.start])
        after_second = mentions[k + 2].start if k + 2 < len(mentions) else len(tokens)
        tail = set(tokens[second.end : after_second])
        if "after" in gap:
            before.add((second.cls, first.cls))
        elif gap & _SEQUENCE_FORWARD or (k == 0 and "after" in lead):
            before.add((first.cls, second.cls))
        elif gap & _SIMULTANEOUS or (gap | tail) & _TOGETHER and ("and" in gap or gap & _TOGETHER):
            together.add(frozenset((first.cls, second.cls)))
    return before, together


def _repetitions(tokens: list[str], mentions: list[MentionSpan]) -> int:
    """Immediate stutters of 1-4 words ("can be can be"), repeated content bigrams, events named twice."""
    words = [t for t in tokens if t not in _PUNCTUATION]
    stutters = sum(
        words[i : i + n] == words[i + n : i + 2 * n] for n in range(1, 5) for i in range(len(words) - 2 * n + 1)
    )
    filler = FUNCTION_WORDS | set(ATTRIBUTE_WORDS)
    bigrams = Counter(
        (a, b) for a, b in zip(words, words[1:], strict=False) if not (a in filler and b in filler) and a != b
    )
    repeated_bigrams = sum(count - 1 for count in bigrams.values())
    live = [m.cls for m in mentions if not m.negated]
    repeated_classes = len(live) - len(set(live))
    return stutters + repeated_bigrams + repeated_classes


def _grammar_issues(tokens: list[str], mentions: list[MentionSpan]) -> int:
    inside = {i for m in mentions for i in range(m.start, m.end)}
    starts = {m.start for m in mentions}
    issues = 0 if mentions else 1
    if tokens and tokens[0] in CONNECTIVES - {"after", "in", "with"}:
        issues += 1
    for i, token in enumerate(tokens):
        if i in inside:
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if token in DETERMINERS and nxt is not None and not (
            i + 1 in starts or nxt in ATTRIBUTE_WORDS or nxt in _CAN_FOLLOW_DETERMINER or nxt.endswith("ing")
        ):
            issues += 1
        if token in DETERMINERS and nxt in ATTRIBUTE_WORDS:
            # an article and adjectives must lead to a noun
            j = i + 1
            while j < len(tokens) and tokens[j] in ATTRIBUTE_WORDS:
                j += 1
            if j < len(tokens) and j not in starts:
                issues += 1
        if (
            token in CONNECTIVES - CLAUSE_CLOSERS and nxt in CONNECTIVES and i + 1 not in inside
            and (token, nxt) not in _CONNECTIVE_BIGRAMS and token != nxt
        ):
            issues += 1
    return issues


_VERBS = frozenset({w for c in CLASSES.values() for pair in c.verbs for form in pair for w in form.split()}
                   | OTHER_VERBS | OTHER_SOUND_VERBS)


def _word_list(tokens: list[str], mentions: list[MentionSpan]) -> bool:
    """Names side by side or split by punctuation only ("piano whistle", "siren, bells, rain"), or a caption
    with neither a verb nor an article ("piano music")."""
    side_by_side = any(set(tokens[first.end : second.start]) <= {",", "-", ".", "/"} and not first.has_verb
                       for first, second in zip(mentions, mentions[1:], strict=False))
    bare = bool(mentions) and not any(t in _VERBS or t in DETERMINERS for t in tokens)
    return side_by_side or bare


_COMPARATIVES = {"louder": ("loudness", "loud"), "quieter": ("loudness", "soft"), "softer": ("loudness", "soft"),
                 "fainter": ("loudness", "soft"), "higher": ("pitch", "high"), "higher-pitched": ("pitch", "high"),
                 "lower": ("pitch", "low"), "lower-pitched": ("pitch", "low"), "deeper": ("pitch", "low"),
                 "faster": ("rate", "fast"), "quicker": ("rate", "fast"), "slower": ("rate", "slow")}


def _comparisons(tokens: list[str], mentions: list[MentionSpan]) -> list[tuple[str, str, str, str]]:
    """"X is louder than Y": (X's class, attribute, the value it claims for X, Y's class)."""
    found = []
    live = [m for m in mentions if not m.negated]
    for position, token in enumerate(tokens[:-1]):
        if token in _COMPARATIVES and tokens[position + 1] == "than":
            first = next((m for m in reversed(live) if m.end <= position), None)
            second = next((m for m in live if m.start > position), None)
            if first is not None and second is not None and first.cls != second.cls:
                found.append((first.cls, *_COMPARATIVES[token], second.cls))
    return found


_EXCLUSIVE = (("only",), ("nothing", "else"), ("nothing", "but"), ("no", "other"), ("otherwise", "silent"),
              ("otherwise", "quiet"), ("no", "background"), ("background", "is", "quiet"),
              ("background", "is", "silent"))


def _exclusive(tokens: list[str]) -> bool:
    """Says nothing else is heard: "only a siren", "nothing else can be heard", "an otherwise silent room"."""
    return any(tuple(tokens[k : k + len(p)]) == p for p in _EXCLUSIVE for k in range(len(tokens)))


def parse_caption(text: str) -> ParsedCaption:
    tokens = tokenize(text)
    mentions = _drop_comparisons(tokens, _find_mentions(tokens))
    _negate(tokens, mentions)
    _attach_attributes(tokens, mentions)
    _mark_background(tokens, mentions)
    before, together = _relations(tokens, mentions)
    words = [t for t in tokens if t not in _PUNCTUATION]
    truncated = bool(words) and (
        words[-1] in _DANGLING or (words[-1] in ATTRIBUTE_WORDS and len(words) > 1 and words[-2] in DETERMINERS)
    )
    return ParsedCaption(
        tokens=tokens,
        mentions=mentions,
        before=before,
        together=together,
        repetitions=_repetitions(tokens, mentions),
        truncated=truncated,
        grammar_issues=_grammar_issues(tokens, mentions),
        word_list=_word_list(tokens, mentions),
        silence=not any(not m.negated for m in mentions) and bool(set(tokens) & SILENCE),
        exclusive=_exclusive(tokens),
        comparisons=_comparisons(tokens, mentions),
    )
