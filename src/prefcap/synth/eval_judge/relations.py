"""The order, simultaneity and background a caption states between the sounds it names.

Mentions joined without a relation word form a group; the word between two groups relates them ("A and B, then
C": A and B before C); "together", "at the same time" after a group make its members simultaneous; "in the
background" marks the mention before it (or, leading, the one after it); a new sentence relates to the last one
only through its own relation word.
"""

from __future__ import annotations

from prefcap.synth.eval_judge import vocabulary as vocab
from prefcap.synth.eval_judge.claims import Mention
from prefcap.synth.eval_judge.words import CLAUSE_BREAKS, Word


def _phrase_at(words: list[Word], i: int, phrases) -> int:
    """Length of the phrase of `phrases` that starts at word i (0 if none)."""
    for phrase in phrases:
        if tuple(w.text for w in words[i:i + len(phrase)]) == phrase:
            return len(phrase)
    return 0


def stated_relations(words: list[Word], mentions: list[Mention]):
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
            if preceding is not None and not any(w.text in CLAUSE_BREAKS - {","} | {"and"} for w in between):
                preceding.background = True
            else:
                following = next((m for m in mentions if m.start >= i + length), None)
                if following is not None:
                    following.background = True
    # groups of mentions joined without a relation word; the relation word between two groups relates them
    groups: list[list[int]] = [[live[0]]]
    relations: list[str | None] = [None]  # each group's relation to the one before
    lead = words[:mentions[live[0]].start]
    first_group_backward = any(w.text in vocab.BACKWARD for w in lead) and not has_phrase(lead, vocab.FORWARD_PHRASES)

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


def has_phrase(words: list[Word], phrases) -> bool:
    return any(_phrase_at(words, i, phrases) for i in range(len(words)))


def _close_group(group: list[int], together: set[frozenset[int]]) -> None:
    for a in group:
        for b in group:
            if a < b:
                together.add(frozenset((a, b)))


_CLOSERS = (("together",), ("simultaneously",), ("at", "the", "same", "time"), ("at", "once"), ("in", "unison"),
            ("concurrently",))


def _gap_relation(gap: list[Word], skip_closers: bool = False) -> str | None:
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
