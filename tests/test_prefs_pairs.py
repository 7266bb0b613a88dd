"""Candidate pairs: de-duplicated candidates, an evenly spread budget, and the three strategies."""

from collections import Counter

import numpy as np
import pytest
import torch

from conftest import TINY_BART
from prefcap.captioners.audio_bart import AudioBartCaptioner
from prefcap.captioners.base import Decoding, Generation
from prefcap.data.audio import write_wav
from prefcap.data.records import Caption, Clip
from prefcap.errors import PrefcapError
from prefcap.prefs.pairs import (
    Candidate,
    PairsConfig,
    build_pairs,
    contrast_pairs,
    normalise,
    sample_candidates,
    select_pairs,
)
from prefcap.prefs.perturb import PERTURBATIONS, perturb_by_name
from prefcap.prefs.store import Store
from prefcap.tokenizer import train_tokenizer

SR = 16000


class FixedCaptioner:
    """Writes the same texts for every clip: `texts[mode]` cycled over the n captions asked for."""

    sample_rate = SR

    def __init__(self, texts: dict[str, list[str]]):
        self.texts = texts
        self.calls: list[tuple[int, str]] = []

    def generate(self, waveforms, sr, n=1, decoding=Decoding()) -> Generation:  # noqa: B008
        self.calls.append((n, decoding.mode))
        row = [self.texts[decoding.mode][k % len(self.texts[decoding.mode])] for k in range(n)]
        empty = torch.zeros(len(waveforms) * n, 1)
        return Generation(texts=[row] * len(waveforms), token_ids=empty.long(), mask=empty, log_probs=empty,
                          truncated=empty[:, 0].bool())


@pytest.fixture
def audio_clips(tmp_path) -> list[Clip]:
    rng = np.random.default_rng(0)
    clips = []
    for k in range(2):
        path = tmp_path / f"clip{k}.wav"
        write_wav(path, (0.3 * rng.standard_normal(SR)).astype(np.float32), SR)
        clips.append(Clip(id=f"c{k}", audio_path=str(path)))
    return clips + [Clip(id="silent")]  # no audio: no candidates


def made_up(clip_ids, systems=("s",), per_system: int = 5) -> tuple[list[Clip], dict[str, list[Candidate]]]:
    clips = [Clip(id=clip_id) for clip_id in clip_ids]
    return clips, {clip.id: [Candidate(f"{system} caption {k}", system) for system in systems
                             for k in range(per_system)] for clip in clips}


def unordered(pair) -> tuple:
    return pair.clip.id, frozenset((pair.caption_a.text, pair.caption_b.text))


def test_normalise_is_the_dedup_key():
    assert normalise("  A dog\tbarks  loudly. ") == "a dog barks loudly"
    assert normalise("a dog barks loudly!?") == normalise("A DOG BARKS LOUDLY") == "a dog barks loudly"
    assert normalise(" . ") == ""


def test_candidates_are_distinct_nonempty_and_first_seen_wins(audio_clips):
    first = FixedCaptioner({"greedy": ["A dog barks."], "beam": ["a dog barks", "Rain falls"],
                            "sample": ["", "rain  falls!", "Wind blows"]})
    second = FixedCaptioner({"greedy": ["a dog barks"], "beam": ["Birds sing", "."], "sample": ["WIND BLOWS"]})
    decodings = (Decoding(), Decoding(mode="beam", num_beams=2), Decoding(mode="sample"))
    config = PairsConfig(num_pairs=1, decodings=decodings, samples_per_decoding=3)
    references = [Caption(clip_id="c0", text="Birds sing.", source="reference"),
                  Caption(clip_id="c0", text="A car passes", source="reference"),
                  Caption(clip_id="elsewhere", text="A car passes", source="reference")]
    found = sample_candidates({"one": first, "two": second}, audio_clips, config, references=references,
                              progress=False)
    assert first.calls == [(1, "greedy"), (2, "beam"), (3, "sample")]  # beam: at most num_beams
    assert found["silent"] == []
    assert [(c.text, c.system) for c in found["c1"]] == [
        ("A dog barks.", "one"), ("Rain falls", "one"), ("Wind blows", "one"), ("Birds sing", "two")]
    assert found["c1"][0].decoding == {"mode": "greedy", "num_beams": 4, "temperature": 1.0, "top_p": 1.0,
                                       "max_new_tokens": 32}
    assert found["c0"] == found["c1"]  # references are ignored unless asked for
    with_refs = sample_candidates({"one": first, "two": second}, audio_clips,
                                  PairsConfig(num_pairs=1, decodings=decodings, include_references=True),
                                  references=references, progress=False)
    assert with_refs["c0"][-1] == Candidate("A car passes", "reference", None)
    assert [c.system for c in with_refs["c1"]].count("reference") == 0
    with pytest.raises(PrefcapError, match="no reference captions"):
        sample_candidates({"one": first}, audio_clips, PairsConfig(num_pairs=1, include_references=True),
                          progress=False)
    with pytest.raises(PrefcapError, match="no captioners"):
        sample_candidates({}, audio_clips, PairsConfig(num_pairs=1), progress=False)


def test_budget_is_spread_evenly_over_the_chosen_clips():
    clips, candidates = made_up([f"c{k}" for k in range(6)])  # 10 possible pairs each
    pairs = select_pairs(clips, candidates, PairsConfig(num_pairs=10, num_clips=4))
    assert len(pairs) == 10 and len({unordered(p) for p in pairs}) == 10
    assert sorted(Counter(p.clip.id for p in pairs).values()) == [2, 2, 3, 3]
    assert all(p.caption_a.text != p.caption_b.text for p in pairs)
    assert {p.caption_a.text < p.caption_b.text for p in pairs} == {True, False}  # a / b drawn at random


def test_a_clip_short_of_pairs_gives_its_share_to_the_others():
    clips, candidates = made_up(["few", "many", "more"])
    candidates["few"] = candidates["few"][:2]  # one possible pair
    pairs = select_pairs(clips, candidates, PairsConfig(num_pairs=9))
    assert Counter(p.clip.id for p in pairs) == {"few": 1, "many": 4, "more": 4}
    shortfall = select_pairs(clips, candidates, PairsConfig(num_pairs=100))
    assert len(shortfall) == 21 and len({unordered(p) for p in shortfall}) == 21


def test_the_same_seed_gives_the_same_pairs():
    clips, candidates = made_up([f"c{k}" for k in range(8)])
    texts = lambda config: [(p.clip.id, p.caption_a.text, p.caption_b.text)  # noqa: E731
                            for p in select_pairs(clips, candidates, config)]
    config = PairsConfig(num_pairs=6, num_clips=5, seed=3)
    assert texts(config) == texts(config)
    assert texts(config) != texts(PairsConfig(num_pairs=6, num_clips=5, seed=4))


def test_cross_system_pairs_two_systems_only():
    clips, candidates = made_up(["mixed", "other"], systems=("x", "y"), per_system=3)
    candidates["alone"] = [Candidate(f"lonely {k}", "x") for k in range(4)]
    clips.append(Clip(id="alone"))
    pairs = select_pairs(clips, candidates, PairsConfig(num_pairs=30, strategy="cross-system"))
    assert len(pairs) == 18  # 3 x 3 per two-system clip; none of the one-system clip
    assert all(p.caption_a.source != p.caption_b.source for p in pairs)
    assert "alone" not in {p.clip.id for p in pairs}
    with pytest.raises(PrefcapError, match="two systems"):
        select_pairs(clips[-1:], candidates, PairsConfig(num_pairs=3, strategy="cross-system"))


def test_uncertain_picks_the_pairs_the_ensemble_is_least_sure_about():
    clip = Clip(id="c")
    candidates = {"c": [Candidate(text, "s") for text in ("t0", "t1", "t2", "t3")]}
    # t0 vs t1: members disagree on the sign (margin 1, std 1.6) -> a coin flip;
    # t2 vs t3: a small margin (0.5) every member agrees on -> sure; the rest: large margins.
    scores = np.array([[0.0, 1.0, 10.0, 10.5], [0.0, -1.0, 20.0, 20.5], [0.0, 3.0, 30.0, 30.5]])
    scorer = lambda clip, texts: scores[:, [int(t[1]) for t in texts]]  # noqa: E731
    config = PairsConfig(num_pairs=2, strategy="uncertain")
    picked = [frozenset((p.caption_a.text, p.caption_b.text)) for p in select_pairs([clip], candidates, config, scorer)]
    assert picked == [{"t0", "t1"}, {"t0", "t2"}]
    with pytest.raises(PrefcapError, match="needs a reward model"):
        select_pairs([clip], candidates, config)
    with pytest.raises(PrefcapError, match="expected \\[ensemble members, captions\\]"):
        select_pairs([clip], candidates, config, lambda clip, texts: np.zeros((3, 2)))


def test_configuration_and_empty_inputs_are_clear_errors():
    with pytest.raises(PrefcapError, match="unknown pair strategy 'best'"):
        PairsConfig(num_pairs=1, strategy="best")
    with pytest.raises(PrefcapError, match="num_pairs must be at least 1"):
        PairsConfig(num_pairs=0)
    with pytest.raises(PrefcapError, match="num_clips"):
        PairsConfig(num_pairs=1, num_clips=0)
    clips, candidates = made_up(["c"], per_system=1)
    with pytest.raises(PrefcapError, match="two distinct candidates"):
        select_pairs(clips, candidates, PairsConfig(num_pairs=1))


@pytest.mark.usefixtures("one_thread")
def test_build_pairs_with_a_real_captioner_stores_them_once(audio_clips, tmp_path):
    torch.manual_seed(0)
    captioner = AudioBartCaptioner.new(train_tokenizer(["a dog barks", "rain falls on a roof"], 300), **TINY_BART)
    captioner.model.eval()
    decodings = (Decoding(max_new_tokens=6), Decoding(mode="beam", num_beams=2, max_new_tokens=6),
                 Decoding(mode="sample", max_new_tokens=6))
    config = PairsConfig(num_pairs=8, strategy="cross-system", decodings=decodings, contrast_fraction=0.25)
    store = Store(tmp_path / "prefs.sqlite")
    stats = build_pairs(store, {"one": captioner, "two": captioner}, audio_clips, config, progress=False)
    assert (stats["clips"], stats["clips_without_candidates"], stats["pairs_requested"]) == (3, 1, 8)
    assert stats["pairs_added"] == stats["pairs_selected"] == store.counts()["pairs"] == 8
    origins = Counter(row["origin"].split(":")[0] for row in store.pair_rows())
    assert origins == {"cross-system": 6, "contrast": 2} == Counter({"cross-system": 8 - stats["contrast_pairs"],
                                                                     "contrast": stats["contrast_pairs"]})
    assert all(row["system_a"] != row["system_b"] for row in store.pair_rows())
    assert all(row["origin"] in (row["system_a"], row["system_b"]) for row in store.pair_rows()
               if row["origin"].startswith("contrast"))
    with pytest.raises(PrefcapError, match="needs a reward model"):
        build_pairs(store, {"one": FixedCaptioner({})}, audio_clips, PairsConfig(num_pairs=1, strategy="uncertain"))
    again = build_pairs(store, {"one": captioner, "two": captioner}, audio_clips, config, progress=False)
    assert again["pairs_selected"] == stats["pairs_selected"] and again["pairs_added"] == 0
    store.close()


CAPTIONS = ["A dog barks while rain falls on a roof.", "A siren wails in the distance as a car passes by.",
            "Birds chirp and a bell rings twice.", "Water drips slowly in a quiet room."]


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_every_perturbation_damages_the_caption_in_its_own_way(kind):
    rng = np.random.default_rng(0)
    caption, others = CAPTIONS[0], CAPTIONS[1:]
    damaged = {perturb_by_name(kind, caption, others, np.random.default_rng(k)) for k in range(8)} - {None}
    assert damaged and caption not in damaged
    for text in damaged:
        words = text.lower().rstrip(".").split()
        if kind == "cut_off":
            assert not text.endswith(".") and len(words) < 10 and caption.lower().startswith(text.lower())
        elif kind == "repeat":
            assert len(words) > 10
        elif kind == "negate":
            assert {"no", "not", "without", "cannot", "neither"} & set(words)
        elif kind == "verbless":
            assert not {"barks", "falls", "while"} & set(words) and "dog" in words
        elif kind == "other_clip":
            assert text in others
        elif kind == "add_other_sound":
            assert text.lower().startswith(caption.lower().rstrip(".")) and len(words) > 10
        else:
            assert sorted(words) == sorted(caption.lower().rstrip(".").split())
    assert perturb_by_name(kind, "", [], rng) is None


def test_contrast_pairs_take_their_share_of_the_budget_and_are_marked(tmp_path):
    clips = [Clip(id=f"c{k}", domain="target") for k in range(4)]
    candidates = {c.id: [Candidate(CAPTIONS[k], "baseline", {"mode": "greedy"}),
                         Candidate(CAPTIONS[(k + 1) % 4], "baseline", {"mode": "sample"})]
                  for k, c in enumerate(clips)}
    pairs = contrast_pairs(clips, candidates, 12, seed=0)
    assert len(pairs) == 12 and Counter(p.clip.id for p in pairs) == {c.id: 3 for c in clips}
    for pair in pairs:
        damaged, original = sorted((pair.caption_a, pair.caption_b), key=lambda c: not c.source.startswith("contrast"))
        assert damaged.source == pair.origin and pair.origin.split(":")[1] in PERTURBATIONS
        assert original.text in {c.text for c in candidates[pair.clip.id]} and damaged.text != original.text
    assert {p.caption_a.source.startswith("contrast") for p in pairs} == {True, False}  # a or b at random
    assert [p.caption_a.text for p in contrast_pairs(clips, candidates, 12, seed=0)] == [
        p.caption_a.text for p in pairs]
    with pytest.raises(PrefcapError, match="contrast_fraction"):
        PairsConfig(num_pairs=4, contrast_fraction=1.0)
