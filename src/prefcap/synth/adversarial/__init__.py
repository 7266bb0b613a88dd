"""Adversarial caption pairs for the simulated listeners, written in plain everyday English.

The phrase table and the caption templates below are written independently of the corpus's own caption grammar
and of the listeners' vocabularies (nothing here is imported from prefcap.synth): a listener that only
understands the words the corpus generator happens to use will fail these pairs, as it would fail real people's
captions.

`adversarial_pairs(clips, seed)` returns rows {"clip_id", "kind", "form", "better", "worse"}: for every clip and
every kind that can apply to its scene, one pair in which a careful listener who knows the scene prefers `better`.
`form` names the template that shaped the adversarial side. REQUIRED_KINDS are asserted for the listeners by
tests/test_adversarial.py; EXTRA_KINDS are a dev set that is only reported there. The demo scores its reward
models on every kind (`results.json["rm"]["adversarial"]`).

Run `python -m prefcap.synth.adversarial` to print examples of every kind and form.
"""

from __future__ import annotations

import random

from prefcap.synth.adversarial.forms import (
    CUTOFF_FORMS,
    INVENTED_FORMS,
    NEGATION_FORMS,
    ORDER_FORMS,
    PARAPHRASE_FORMS,
    PLURAL_FORMS,
    STUTTER_FORMS,
    VERBLESS_FORMS,
    _invented,
    add_invented,
    cutoff,
    describe,
    negation,
    no_order,
    paraphrase,
    partial,
    plural_caption,
    reference,
    stutter,
    verbless,
)
from prefcap.synth.adversarial.phrases import (
    NONSENSE,
    NONSENSE_ADJ,
    OPPOSITE,
    Phrase,
    SceneView,
    _absent,
    _article,
    _cap,
    _phrases,
)

# ----------------------------------------------------------------------------------------------------------------
# Kinds
# ----------------------------------------------------------------------------------------------------------------

SUITE_VERSION = 1  # raise when a kind or a form changes: scores made with another version are not comparable
REQUIRED_KINDS = ("negation_vs_partial", "negation_vs_reference", "verbless_vs_reference", "invented_with_article",
                  "invented_without_article", "plural_vs_wrong_event", "paraphrase_vs_wrong_event",
                  "order_vs_no_order")
EXTRA_KINDS = ("stutter_vs_reference", "cutoff_vs_partial", "wrong_order", "wrong_attribute", "other_clip",
               "nonsense_word", "partial_vs_reference", "simultaneous_as_sequence")


def _swap(steps: list[list[Phrase]], bg: Phrase | None, view: SceneView, rng: random.Random,
          **kw) -> tuple[list[list[Phrase]], Phrase | None]:
    """The same wording with one source replaced by an absent class."""
    slots = [(i, j) for i, s in enumerate(steps) for j in range(len(s))] + ([None] if bg is not None else [])
    slot = rng.choice(slots)
    wrong = Phrase(_absent(view, rng), rng, **kw)
    new_steps = [list(s) for s in steps]
    if slot is None:
        return new_steps, wrong
    new_steps[slot[0]][slot[1]] = wrong
    return new_steps, bg


def _seeded(seed: int, clip_id: str, kind: str, tag: str = "") -> random.Random:
    return random.Random(f"{seed}:{clip_id}:{kind}:{tag}")


def _pick(forms: tuple[str, ...], index: int, ok=lambda form: True) -> str | None:
    for k in range(len(forms)):
        form = forms[(index + k) % len(forms)]
        if ok(form):
            return form
    return None


def _row(clip, kind, form, better, worse) -> dict:
    return {"clip_id": clip.id, "kind": kind, "form": form, "better": better, "worse": worse}


def _kind_rows(kind: str, index: int, clip, view: SceneView, clips, views, seed: int) -> dict | list[dict] | None:
    """The pair(s) of one kind for one clip, or None where the kind does not apply to its scene.

    Long on purpose: one short branch per kind, so every kind's better and worse sides read side by side; the
    templates they call live in `forms`."""
    rng = _seeded(seed, clip.id, kind)
    n_events = len(view.events)
    if kind == "negation_vs_partial":
        form = _pick(NEGATION_FORMS, index, lambda f: f != "neither_nor" or n_events > 1)
        return _row(clip, kind, form, partial(view, rng), negation(view, rng, form))
    if kind == "negation_vs_reference":
        form = _pick(NEGATION_FORMS, index + 3, lambda f: f != "neither_nor" or n_events > 1)
        return _row(clip, kind, form, reference(view, rng), negation(view, rng, form))
    if kind == "verbless_vs_reference":
        form = _pick(VERBLESS_FORMS, index)
        return _row(clip, kind, form, reference(view, rng), verbless(view, rng, form))
    if kind in ("invented_with_article", "invented_without_article"):
        form = _pick(INVENTED_FORMS, index)
        ref = reference(view, rng)
        return _row(clip, kind, form, ref,
                    add_invented(ref, _invented(view, rng, kind == "invented_with_article"), form, rng))
    if kind == "plural_vs_wrong_event":
        form = _pick(PLURAL_FORMS, index)
        steps, bg = _phrases(view, rng, plural=True)
        wrong_steps, wrong_bg = _swap(steps, bg, view, rng, plural=True)
        compose_seed = rng.random()
        return _row(clip, kind, form, plural_caption(steps, bg, random.Random(compose_seed), form),
                    plural_caption(wrong_steps, wrong_bg, random.Random(compose_seed), form))
    if kind == "paraphrase_vs_wrong_event":
        form = _pick(PARAPHRASE_FORMS, index, lambda f: f != "followed_by" or len(view.steps) > 1)
        steps, bg = _phrases(view, rng, colloquial=True, attr_p=0.2)
        wrong_steps, wrong_bg = _swap(steps, bg, view, rng, colloquial=True)
        compose_seed = rng.random()
        return _row(clip, kind, form, paraphrase(steps, bg, random.Random(compose_seed), form),
                    paraphrase(wrong_steps, wrong_bg, random.Random(compose_seed), form))
    if kind == "order_vs_no_order":  # two pairs per clip with sequential steps (a quarter of scenes have one step)
        if len(view.steps) < 2:
            return None
        rows = []
        for offset in (0, 2):
            form = _pick(ORDER_FORMS, index + offset)
            steps, bg = _phrases(view, rng, need_alone=True)
            better = describe(steps, bg, rng, style=rng.choice(("then", "followed_by", "after", "first", "before")))
            flat = [p for s in steps for p in s] + ([bg] if bg else [])
            rows.append(_row(clip, kind, form, better, no_order(flat, rng, form)))
        return rows
    # --- extra kinds ---
    if kind == "stutter_vs_reference":
        form = _pick(STUTTER_FORMS, index)
        ref = reference(view, rng)
        return _row(clip, kind, form, ref, stutter(ref, rng, form))
    if kind == "cutoff_vs_partial":
        form = _pick(CUTOFF_FORMS, index)
        event = rng.choice(view.events)
        return _row(clip, kind, form, partial(view, rng, event=event), cutoff(view, rng, form, event))
    if kind == "wrong_order":
        if len(view.steps) < 2:
            return None
        form = _pick(("then", "followed_by", "after", "before", "first"), index)
        steps, bg = _phrases(view, rng)
        compose_seed = rng.random()
        wrong = list(reversed(steps)) if len(steps) == 2 else [steps[1], steps[0], steps[2]]
        if len(steps) == 3 and rng.random() < 0.5:
            wrong = [steps[0], steps[2], steps[1]]
        return _row(clip, kind, form, describe(steps, bg, random.Random(compose_seed), style=form),
                    describe(wrong, bg, random.Random(compose_seed), style=form))
    if kind == "wrong_attribute":
        candidates = [(e, a) for e in view.events for a in ("loudness", "pitch", "rate") if a in e["attributes"]]
        preferred = ("loudness", "pitch", "rate")[index % 3]
        pool = [c for c in candidates if c[1] == preferred] or candidates
        event, attr = rng.choice(pool)
        value = event["attributes"][attr]
        compose_seed = rng.random()
        captions = []
        for v in (value, OPPOSITE[value]):
            r = random.Random(compose_seed)
            steps = [[Phrase(e["cls"], r, e["attributes"], attr=attr if e is event else None, attr_value=v,
                             plain=True) for e in s] for s in view.steps]
            bg = None
            if view.background:
                e = view.background
                bg = Phrase(e["cls"], r, e["attributes"], attr=attr if e is event else None, attr_value=v, plain=True)
            captions.append(describe(steps, bg, r))
        return _row(clip, kind, attr, captions[0], captions[1])
    if kind == "other_clip":
        form = ("disjoint", "shared_class")[index % 2]
        others = [(k, v) for k, v in enumerate(views) if clips[k].id != clip.id]
        if form == "shared_class":
            pool = [k for k, v in others if len(v.classes & view.classes) == 1 and v.classes != view.classes]
        else:
            pool = [k for k, v in others if not v.classes & view.classes]
        if not pool:
            form, pool = "disjoint", [k for k, v in others if not v.classes & view.classes]
        other = views[rng.choice(pool)]
        return _row(clip, kind, form, reference(view, rng), reference(other, rng))
    if kind == "nonsense_word":
        form = _pick(("extra_clause", "adjective", "prefix_sentence"), index)
        compose_seed = rng.random()
        word = rng.choice(NONSENSE)
        verb = rng.choice(("hums", "rattles", "squeaks", "clatters"))
        better = reference(view, random.Random(compose_seed), attr_p=0.0)
        if form == "extra_clause":
            worse = f"{better[:-1]}, while {_article(word)} {word} {verb}."
        elif form == "prefix_sentence":
            worse = f"{_cap(_article(word))} {word} {verb}. {better}"
        else:
            r = random.Random(compose_seed)
            adj = rng.choice(NONSENSE_ADJ)
            steps = [[Phrase(e["cls"], r, e["attributes"], attr_p=0.0,
                             extra_adj=adj if (i, j) == (0, 0) else None) for j, e in enumerate(s)]
                     for i, s in enumerate(view.steps)]
            bg = Phrase(view.background["cls"], r, view.background["attributes"]) if view.background else None
            worse = describe(steps, bg, r)
            if worse == better or adj not in worse:  # the first source's noun takes no adjective
                worse = f"{better[:-1]}, while {_article(word)} {word} {verb}."
                form = "extra_clause"
        return _row(clip, kind, form, better, worse)
    if kind == "partial_vs_reference":
        if n_events < 2:
            return None
        form = _pick(("clause", "can_be_heard", "you_can_hear", "there_is"), index)
        return _row(clip, kind, form, reference(view, rng), partial(view, rng, form=form))
    if kind == "simultaneous_as_sequence":
        multi = [i for i, s in enumerate(view.steps) if len(s) > 1]
        if not multi:
            return None
        form = _pick(("then", "followed_by", "after", "first"), index)
        steps, bg = _phrases(view, rng)
        split = [q for s in steps for q in ([[s[0]], [s[1]]] if len(s) > 1 else [s])]
        compose_seed = rng.random()
        better = describe(steps, bg, random.Random(compose_seed), style=form)
        worse = describe(split, bg, random.Random(compose_seed), style=form)
        return _row(clip, kind, form, better, worse)
    raise ValueError(kind)


def adversarial_pairs(clips, seed: int = 0, kinds: tuple[str, ...] = REQUIRED_KINDS + EXTRA_KINDS) -> list[dict]:
    """Rows {"clip_id", "kind", "form", "better", "worse"} for every clip and every kind that applies to it;
    a deterministic function of the clips and `seed`."""
    views = [SceneView.of(c) for c in clips]
    rows = []
    for kind in kinds:
        for index, (clip, view) in enumerate(zip(clips, views, strict=True)):
            made = _kind_rows(kind, index, clip, view, clips, views, seed)
            for row in [made] if isinstance(made, dict) else made or []:
                if row["better"] != row["worse"]:
                    rows.append(row)
    return rows
