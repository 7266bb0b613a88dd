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

from prefcap.data.synth.lexicon import (
    ADJECTIVES,
    ATTRIBUTE_WORDS,
    CLAUSE_CLOSERS,
    CONNECTIVES,
    DETERMINERS,
    FUNCTION_WORDS,
    KEYWORDS,
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
    cls: str
    start: int
    end: int
    attributes: dict[str, set[str]] = field(default_factory=dict)
    background: bool = False


@dataclass
class ParsedCaption:
    tokens: list[str]
    mentions: list[MentionSpan]
    before: set[tuple[str, str]]  # (earlier class, later class) as stated
    together: set[frozenset[str]]  # pairs stated to happen at the same time
    repetitions: int
    truncated: bool
    grammar_issues: int

    @property
    def classes(self) -> set[str]:
        return {m.cls for m in self.mentions}

    @property
    def background(self) -> set[str]:
        return {m.cls for m in self.mentions if m.background}

    @property
    def n_words(self) -> int:
        return sum(t != "," for t in self.tokens)

    def attributes_of(self, cls: str) -> dict[str, set[str]]:
        merged: dict[str, set[str]] = {}
        for mention in self.mentions:
            if mention.cls == cls:
                for attribute, values in mention.attributes.items():
                    merged.setdefault(attribute, set()).update(values)
        return merged


def tokenize(text: str) -> list[str]:
    text = text.lower().replace(",", " , ")
    return re.sub(r"[^a-z0-9,' -]+", " ", text).split()


def _find_mentions(tokens: list[str]) -> list[MentionSpan]:
    """Greedy longest-keyword matching; a verb of the class just named joins that mention."""
    mentions: list[MentionSpan] = []
    i = 0
    while i < len(tokens):
        for phrase, cls, is_noun in KEYWORDS:
            if tuple(tokens[i : i + len(phrase)]) != phrase:
                continue
            previous = mentions[-1] if mentions else None
            if (
                previous and not is_noun and previous.cls == cls
                and all(t in ATTRIBUTE_WORDS for t in tokens[previous.end : i])
            ):
                previous.end = i + len(phrase)
            else:
                mentions.append(MentionSpan(cls, i, i + len(phrase)))
            i += len(phrase)
            break
        else:
            i += 1
    return mentions


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
        elif preceding and not any(t in CONNECTIVES for t in tokens[preceding.end : position]):
            owner = preceding
        if owner:
            owner.attributes.setdefault(attribute, set()).add(value)


def _mark_background(tokens: list[str], mentions: list[MentionSpan]) -> None:
    for position in range(len(tokens) - 2):
        if tokens[position : position + 3] != ["in", "the", "background"]:
            continue
        preceding = next((m for m in reversed(mentions) if m.end <= position), None)
        if preceding and not any(t in CONNECTIVES for t in tokens[preceding.end : position]):
            preceding.background = True
            continue
        following = next((m for m in mentions if m.start > position), None)
        if following:
            following.background = True


def _relations(tokens: list[str], mentions: list[MentionSpan]):
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
        elif gap & _SIMULTANEOUS or ("and" in gap and tail & _TOGETHER):
            together.add(frozenset((first.cls, second.cls)))
    return before, together


def _repetitions(tokens: list[str], mentions: list[MentionSpan]) -> int:
    """Immediate stutters of 1-4 words ("can be can be"), repeated content bigrams, events named twice."""
    words = [t for t in tokens if t != ","]
    stutters = sum(
        words[i : i + n] == words[i + n : i + 2 * n] for n in range(1, 5) for i in range(len(words) - 2 * n + 1)
    )
    filler = FUNCTION_WORDS | set(ATTRIBUTE_WORDS)
    bigrams = Counter(
        (a, b) for a, b in zip(words, words[1:], strict=False) if not (a in filler and b in filler) and a != b
    )
    repeated_bigrams = sum(count - 1 for count in bigrams.values())
    repeated_classes = len(mentions) - len({m.cls for m in mentions})
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
            i + 1 in starts or nxt in ATTRIBUTE_WORDS or nxt in _CAN_FOLLOW_DETERMINER
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


def parse_caption(text: str) -> ParsedCaption:
    tokens = tokenize(text)
    mentions = _find_mentions(tokens)
    _attach_attributes(tokens, mentions)
    _mark_background(tokens, mentions)
    before, together = _relations(tokens, mentions)
    words = [t for t in tokens if t != ","]
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
    )
