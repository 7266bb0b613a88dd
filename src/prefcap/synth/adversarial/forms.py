"""Caption templates of the adversarial suite: the plain describer and each kind's adversarial forms."""

from __future__ import annotations

import random

from prefcap.synth.adversarial.phrases import (
    INVENTED_CLASH,
    INVENTED_WITH_ARTICLE,
    INVENTED_WITHOUT_ARTICLE,
    Phrase,
    SceneView,
    _absent,
    _article,
    _bare,
    _bare_np,
    _cap,
    _phrases,
    _place,
)

# ----------------------------------------------------------------------------------------------------------------
# The plain describer: every event, the order of steps, simultaneity, and the background
# ----------------------------------------------------------------------------------------------------------------

SEQUENCE_STYLES = ("then", "followed_by", "after", "first", "sentences", "before")
BACKGROUND_STYLES = ("with", "while", "sentence")


def _step_clause(step: list[Phrase], rng: random.Random, loose: bool, subordinate: bool = False) -> str:
    """One step as a clause; `subordinate` (after "after"/"before"): simple present, no inner commas."""
    progressive = rng.random() < 0.25 and not subordinate
    if len(step) == 1:
        return step[0].clause(progressive=progressive)
    a, b = step
    style = rng.choice(("same_time", "while", "as") if loose else ("same_time", "same_time2"))
    if style == "same_time" or subordinate:
        return f"{a.clause()} and {b.clause()} at the same time"
    if style == "same_time2":
        return f"{a.clause()} and, at the same time, {b.clause()}"
    return f"{a.clause()} {style} {b.clause(progressive=style == 'while' and rng.random() < 0.5)}"


def _step_nominal(step: list[Phrase]) -> tuple[str, bool]:
    if len(step) == 1:
        return step[0].nominal(), step[0].plural
    return f"{step[0].nominal()} and {step[1].nominal()} at the same time", True


def _sequence(steps: list[list[Phrase]], rng: random.Random, style: str) -> str:
    n = len(steps)
    if n == 1:
        return _step_clause(steps[0], rng, loose=True)
    clauses = [_step_clause(s, rng, loose=False, subordinate=style in ("after", "before")) for s in steps]
    if style == "then":
        if n == 2:
            return f"{clauses[0]}, {rng.choice(('then', 'and then'))} {clauses[1]}"
        return f"{clauses[0]}, then {clauses[1]}, and finally {clauses[2]}"
    if style == "followed_by":
        rest = [_step_nominal(s)[0] for s in steps[1:]]
        if rng.random() < 0.5 or len(steps[0]) > 1:
            head = f"{clauses[0]}, followed by"
        else:
            head = f"{steps[0][0].event_np()} {'are' if steps[0][0].plural else 'is'} followed by"
        return f"{head} {rest[0]}" + (f" and then {rest[1]}" if n == 3 else "")
    if style == "after":
        tail = f", and then {clauses[2]}" if n == 3 else ""
        return f"after {clauses[0]}, {clauses[1]}{tail}"
    if style == "first":
        tail = f", and finally {clauses[2]}" if n == 3 else ""
        return f"first {clauses[0]}, then {clauses[1]}{tail}"
    if style == "sentences":
        link = rng.choice(("Then", "After that,", "Afterwards,"))
        tail = f". Finally, {clauses[2]}" if n == 3 else ""
        return f"{clauses[0]}. {link} {clauses[1]}{tail}"
    if style == "before":
        if n == 2:
            return f"{clauses[0]} before {clauses[1]}"
        return f"{clauses[0]} before {clauses[1]}, and then {clauses[2]}"
    raise ValueError(style)


def _with_background(body: str, bg: Phrase | None, rng: random.Random, style: str) -> str:
    if bg is None:
        return body + "."
    if style == "while" and " while " in body:
        style = "with"
    if style == "with":
        return f"{body}, with {bg.gerund()} in the background."
    if style == "while":
        return f"{body}, while {bg.clause()} in the background."
    choice = rng.randrange(3)
    if choice == 0:
        return f"{body}. In the background, {bg.clause(progressive=rng.random() < 0.5)}."
    if choice == 1:
        return f"{body}. {_cap(bg.pre())} can be heard in the background."
    return f"{body}. {_cap(bg.there())} in the background."


def _sentence(text: str) -> str:
    """Capitalise every sentence of a caption (sentences end with ". ")."""
    return ". ".join(_cap(s) for s in text.split(". "))


def describe(steps: list[list[Phrase]], bg: Phrase | None, rng: random.Random, style: str | None = None,
             bg_style: str | None = None) -> str:
    """A complete, correct caption of the scene in plain English."""
    if style is None:
        styles = SEQUENCE_STYLES if len(steps) == 2 else SEQUENCE_STYLES[:-1]
        style = rng.choice(styles)
    bg_style = bg_style or rng.choice(BACKGROUND_STYLES)
    return _sentence(_with_background(_sequence(steps, rng, style), bg, rng, bg_style))


def reference(view: SceneView, rng: random.Random, attr_p: float = 0.35, **kw) -> str:
    steps, bg = _phrases(view, rng, attr_p=attr_p)
    return describe(steps, bg, rng, **kw)


def partial(view: SceneView, rng: random.Random, form: str | None = None, event: dict | None = None) -> str:
    """A fluent caption that correctly names one present sound and nothing else."""
    event = event or rng.choice(view.events)
    p = Phrase(event["cls"], rng, event["attributes"], attr_p=0.3)
    form = form or rng.choice(("clause", "can_be_heard", "you_can_hear", "there_is"))
    if form == "clause":
        return _cap(p.clause(progressive=rng.random() < 0.3)) + "."
    if form == "can_be_heard":
        return _cap(p.pre()) + " can be heard."
    if form == "you_can_hear":
        return f"You can hear {p.nominal()}."
    return _cap(p.there()) + "."


# ----------------------------------------------------------------------------------------------------------------
# Adversarial sides
# ----------------------------------------------------------------------------------------------------------------

NEGATION_FORMS = ("no_and", "there_is_no", "neither_nor", "without", "cannot", "absent_clause", "silent")


def negation(view: SceneView, rng: random.Random, form: str) -> str:
    """A caption that denies the present sounds (one or two of them)."""
    events = list(view.events)
    rng.shuffle(events)
    classes = [e["cls"] for e in events[: 2 if len(events) > 1 and form != "cannot" else 1]]
    if form == "no_and":
        words = [_bare(c, rng)[0] for c in classes]
        return _cap(" and ".join(f"no {w}" for w in words)) + " can be heard."
    if form == "there_is_no":
        words = [_bare(c, rng) for c in classes]
        verb = "are" if words[0][1] == "pl" else "is"
        return f"There {verb} no {' or '.join(w for w, _ in words)} {rng.choice(('here', 'in this recording'))}."
    if form == "neither_nor":
        nps = [_bare_np(c, rng) for c in classes]
        return f"Neither {nps[0][0]} nor {nps[1][0]} {'are' if nps[1][1] else 'is'} audible."
    if form == "without":
        words = [_bare(c, rng, prefer=("pl", "mass"))[0] for c in classes]
        return f"Without any {' or '.join(words)}."
    if form == "cannot":
        text, number = _bare(classes[0], rng)
        if rng.random() < 0.5:
            return f"The {text} cannot be heard."
        return f"You cannot hear {_article(text) if number == 'sg' else 'any'} {text}."
    if form == "absent_clause":
        parts = []
        for c in classes:
            p = Phrase(c, rng)
            if p.noun.det == "-" or not p.noun.gerund:  # "no someone knocking" does not work: use a noun
                word, number = _bare(c, rng, prefer=("pl", "mass"))
                parts.append((f"no {word}", number == "pl"))
            else:
                parts.append((f"no {p.noun.text} {_place(p.verb.ing, None)}", p.plural))
        verb = "are" if parts[0][1] else "is"
        return f"There {verb} {' and '.join(t for t, _ in parts)}."
    if form == "silent":
        words = [_bare(c, rng)[0] for c in classes]
        return f"It is completely quiet, with no {' or '.join(words)} at all."
    raise ValueError(form)


VERBLESS_FORMS = ("space", "comma", "period", "dash")


def verbless(view: SceneView, rng: random.Random, form: str) -> str:
    words = [_bare(e["cls"], rng)[0] for e in view.events]
    if form == "space":
        return " ".join(words)
    if form == "comma":
        return ", ".join(words)
    if form == "period":
        return " ".join(_cap(w) + "." for w in words)
    return " - ".join(words)


def _invented(view: SceneView, rng: random.Random, with_article: bool) -> list[tuple[str, str, bool]]:
    """One or two invented sources (clause, participle phrase, plural?), and sometimes an absent class."""
    pool = INVENTED_WITH_ARTICLE if with_article else INVENTED_WITHOUT_ARTICLE
    pool = [x for x in pool if not (INVENTED_CLASH.get(x[0], set()) & view.classes)]
    picks = rng.sample(pool, 2)
    out = []
    for pick in picks[: rng.choice((1, 2))]:
        if with_article:
            subject, verb, ing = pick
            plural = False
        else:
            subject, verb, ing, plural = pick
        out.append((f"{subject} {verb}", f"{subject} {ing}", plural))
    if rng.random() < 0.3:  # sometimes an absent one of the 14 classes too
        cls = _absent(view, rng, exclude={"rain", "wind", "knocking"} if with_article else set())
        p = Phrase(cls, rng, plural=not with_article)
        if with_article and p.noun.det != "a":
            p = Phrase(cls, rng, need_alone=True)
        out.append((p.clause(), p.gerund(), p.plural))
    return out


INVENTED_FORMS = ("while", "also_sentence", "there_is_also", "with_nearby", "prefix")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def add_invented(ref: str, extras: list[tuple[str, str, bool]], form: str, rng: random.Random) -> str:
    body = ref[:-1]
    clauses = [c for c, _, _ in extras]
    gerunds = [g for _, g, _ in extras]
    if form == "while":
        link = "and" if " while " in body else "while"
        return f"{body}, {link} {_join(clauses)} {rng.choice(('nearby', 'in the distance', 'close by'))}."
    if form == "also_sentence":
        return f"{ref} {_cap(_join(clauses))}."
    if form == "there_is_also":
        return f"{ref} There {'are' if extras[0][2] else 'is'} also {_join(gerunds)}."
    if form == "with_nearby":
        return f"{body}, {'and' if ', with ' in body else 'with'} {_join(gerunds)} nearby."
    if form == "prefix":
        return f"{_cap(_join(clauses))}. {ref}"
    raise ValueError(form)


# Plural kind: every source named in the plural.
PLURAL_FORMS = ("clauses", "then", "you_can_hear", "there_are")


def plural_caption(steps: list[list[Phrase]], bg: Phrase | None, rng: random.Random, form: str) -> str:
    flat = [p for s in steps for p in s]
    if form == "clauses":
        parts = [p.clause(progressive=rng.random() < 0.4) for p in flat]
        text = _join(parts)
        if bg is not None:
            text += f", while {bg.clause()} in the background"
        return _cap(text) + "."
    if form == "then":
        step_texts = [" and ".join(p.clause() for p in s) + (" together" if len(s) > 1 else "") for s in steps]
        text = ", then ".join(step_texts)
        if bg is not None:
            text += f", with {bg.gerund()} in the background"
        return _cap(text) + "."
    if form == "you_can_hear":
        text = "You can hear " + _join([p.nominal() for p in flat])
        if bg is not None:
            text += f", with {bg.nominal()} in the background"
        return text + "."
    if form == "there_are":
        text = "There are " + _join([p.gerund() for p in flat])
        if bg is not None:
            text += f", with {bg.nominal()} in the background"
        return text + "."
    raise ValueError(form)


# Paraphrase kind: everyday wording of the whole scene.
PARAPHRASE_FORMS = ("you_can_hear", "followed_by", "as_clauses", "sounds_like", "there_is")


def paraphrase(steps: list[list[Phrase]], bg: Phrase | None, rng: random.Random, form: str) -> str:
    def nominal_step(step):
        if len(step) == 1:
            return step[0].gerund()
        return f"{step[0].gerund()} and {step[1].gerund()} at the same time"

    def clause_step(step):
        if len(step) == 1:
            return step[0].clause(progressive=rng.random() < 0.3)
        return f"{step[0].clause()} as {step[1].clause(progressive=rng.random() < 0.5)}"

    link = rng.choice((", and then ", ", and after that ", ", then "))

    def sequence(parts):
        if len(parts) < 3:
            return link.join(parts)
        return f"{parts[0]}, then {parts[1]}, and finally {parts[2]}"

    if form == "you_can_hear":
        text = "You can hear " + sequence([nominal_step(s) for s in steps])
        if bg is not None:
            text += f", with {bg.gerund()} in the background" if len(steps) > 1 else \
                f" while {bg.clause()} in the background"
        return text + "."
    if form == "followed_by":  # needs two or more steps
        noms = [(nominal_step(s) if len(s) > 1 else s[0].event_np()) for s in steps]
        plural = len(steps[0]) > 1 or steps[0][0].plural
        text = f"{_cap(noms[0])} {'are' if plural else 'is'} followed by {noms[1]}"
        if len(steps) == 3:
            text += f", and then by {noms[2]}"
        if bg is not None:
            text += f", while {bg.clause()} in the background"
        return text + "."
    if form == "as_clauses":
        text = sequence([clause_step(s) for s in steps])
        if bg is not None:
            text += f" as {bg.clause()} in the background" if len(steps) == 1 and len(steps[0]) == 1 else \
                f", and the whole time {bg.clause()} in the background"
        return _cap(text) + "."
    if form == "sounds_like":
        text = "It sounds like " + sequence([nominal_step(s) for s in steps])
        if bg is not None:
            text += f", with {bg.gerund()} in the background"
        return text + "."
    if form == "there_is":
        first = steps[0]
        verb = "are" if first[0].plural else "is"  # agrees with the nearest noun, as people say it
        text = f"There {verb} {nominal_step(first)}"
        for s in steps[1:]:
            text += f", and after that {nominal_step(s)}"
        if bg is not None:
            text += f", with {bg.gerund()} in the background"
        return text + "."
    raise ValueError(form)


ORDER_FORMS = ("can_be_heard", "there_are", "bare_and", "you_can_hear")


def no_order(phrases: list[Phrase], rng: random.Random, form: str) -> str:
    nps = [p.np() for p in phrases]
    if form == "can_be_heard":
        return _cap(_join(nps)) + " can be heard."
    if form == "there_are":
        return f"There {'are' if phrases[0].plural else 'is'} {_join(nps)}."
    if form == "bare_and":
        return _cap(_join(nps)) + "."
    return f"You can hear {_join(nps)}."


STUTTER_FORMS = ("word_repeat", "phrase_repeat", "triple_end", "sentence_repeat")


def stutter(ref: str, rng: random.Random, form: str) -> str:
    words = ref[:-1].split(" ")
    if form == "word_repeat":
        idx = [i for i, w in enumerate(words) if w.isalpha() and len(w) > 3] or [len(words) - 1]
        i = rng.choice(idx)
        return " ".join(words[: i + 1] + [words[i].lower()] + words[i + 1:]) + "."
    if form == "phrase_repeat":
        i = rng.randrange(0, max(1, len(words) - 2))
        span = [w.strip(",.") for w in words[i: i + 3]]
        span[0] = span[0].lower() if i == 0 else span[0]
        return " ".join(words[: i + 3] + span + words[i + 3:]) + "."
    if form == "triple_end":
        return " ".join(words + [words[-1]] * 2) + "."
    return f"{ref} {ref}"


CUTOFF_FORMS = ("connective", "adjective", "article", "midword")


def cutoff(view: SceneView, rng: random.Random, form: str, event: dict) -> str:
    p = Phrase(event["cls"], rng)
    if form == "connective":
        return f"{_cap(p.clause())}{rng.choice((', followed by', ', then', ' while', ' and then'))}"
    if form == "adjective":
        return rng.choice(("The sound of a", "There is a", "You can hear a")) + " " + rng.choice(
            ("high", "loud", "low", "faint"))
    if form == "article":
        return f"{_cap(p.clause())} and {rng.choice(('a', 'the'))}"
    other = Phrase(_absent(view, rng) if rng.random() < 0.5 else rng.choice(view.events)["cls"], rng)
    word = other.noun.text.split(" ")[-1]
    return f"{_cap(p.clause())} and {rng.choice(('a', 'the'))} {word[: max(2, len(word) // 2)]}"
