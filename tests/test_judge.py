"""Simulated annotators: the stand-in for people must behave like careful, imperfect listeners."""

import numpy as np
import pytest

from prefcap.data.records import Clip
from prefcap.errors import PrefcapError
from prefcap.synth import agreement, faults, panels
from prefcap.synth.eval_judge import EVALUATION_PANEL
from prefcap.synth.judge import (
    TRAINING_PANEL,
    TrainingListener,
    Weights,
    caption_quality,
    scene_of,
    score_terms,
)
from prefcap.synth.panel import SimulatedAnnotator, build_panel, majority
from prefcap.synth.parse import parse_caption


@pytest.fixture(scope="module")
def report(target_clips):
    return agreement.annotator_report(target_clips, seed=3, n_pairs=600)


@pytest.mark.parametrize("fault", faults.SINGLE_FAULTS)
@pytest.mark.parametrize("panel", ["train", "eval"])
def test_reference_beats_a_single_fault_95_percent(report, fault, panel):
    assert report["reference_win_rate"][fault][panel] >= 0.95


@pytest.mark.parametrize("panel", ["train", "eval"])
def test_annotators_agree_like_people_on_machine_like_pairs(report, panel):
    assert 0.70 <= report["within_panel_agreement"][panel] <= 0.90


def test_the_two_panels_read_differently_and_their_independence_is_measured(report):
    assert type(TRAINING_PANEL.listener) is not type(EVALUATION_PANEL.listener)
    assert TRAINING_PANEL.noise != EVALUATION_PANEL.noise
    assert TRAINING_PANEL.tie_threshold != EVALUATION_PANEL.tie_threshold
    assert 0.6 <= report["between_panel_agreement"] < 1.0
    independence = report["independence"]
    assert independence["pairs"] == 600
    # they agree on what is better most of the time, but not by construction
    assert 0.6 <= independence["agreement"] < 0.99
    assert 0.3 <= independence["margin_correlation"] < 0.98


def test_annotators_within_a_panel_differ():
    panel = build_panel(TRAINING_PANEL, seed=0)
    assert len({a.weights for a in panel.annotators}) == len(panel.annotators)
    assert len({a.temperature for a in panel.annotators}) == len(panel.annotators)


def test_same_question_same_answer_and_ties_happen(target_clips):
    annotator = build_panel(TRAINING_PANEL, seed=0).annotators[0]
    clip = target_clips[0]
    a, b = "A siren wails.", "A bell rings."
    assert {annotator.prefer(clip, a, b) for _ in range(5)} == {annotator.prefer(clip, a, b)}
    # paraphrases: often a tie, otherwise a coin flip rather than a systematic preference
    rng = np.random.default_rng(0)
    verdicts = []
    for clip in target_clips[:100]:
        scene = scene_of(clip)
        spec = faults.grammar.spec_from_scene(scene, rng, attribute_prob=0.0)
        verdicts.append(annotator.prefer(clip, faults.grammar.render(spec, 1), faults.grammar.render(spec, 2)))
    assert verdicts.count("tie") > 20
    assert abs(verdicts.count("a") - verdicts.count("b")) < 20


def test_quality_orders_obvious_cases(target_clips):
    scene = scene_of(next(c for c in target_clips if len(scene_of(c).events) == 1))
    event = scene.events[0]
    noun = {"siren": "siren", "bell": "bell"}.get(event.cls, event.cls)
    right = f"A {noun} can be heard."
    wrong_event = "A dog barks." if event.cls != "drum" else "A siren wails."
    assert caption_quality(right, scene) > caption_quality(wrong_event, scene)
    assert caption_quality(right, scene) > caption_quality(f"A {noun} can be heard, followed by", scene)


def test_noise_makes_close_calls_uncertain(target_clips):
    """A hot annotator flips some verdicts a cold one gives consistently."""
    cold = SimulatedAnnotator("cold", TrainingListener(), Weights(), temperature=0.01, tie_threshold=0.0)
    hot = SimulatedAnnotator("hot", TrainingListener(), Weights(), temperature=3.0, tie_threshold=0.0)
    pairs = faults.machine_like_pairs(target_clips, np.random.default_rng(1), 200)
    cold_vs_hot = np.mean([cold.prefer(*p) == hot.prefer(*p) for p in pairs])
    assert 0.5 < cold_vs_hot < 0.85


def test_majority_is_the_sign_of_the_vote_sum():
    assert majority(["a", "a", "b"]) == "a"
    assert majority(["a", "b", "tie"]) == "tie"
    assert majority(["tie", "tie", "b"]) == "b"


@pytest.mark.parametrize("panel", ["train", "eval"])
def test_clip_without_scene_is_a_clear_error(panel):
    annotator = panels.build(panel).annotators[0]
    with pytest.raises(PrefcapError, match="real-clip.*metadata\\['scene'\\]"):
        annotator.prefer(Clip(id="real-clip"), "a dog barks", "a cat meows")


@pytest.mark.parametrize("fault", faults.FALSE_FAULTS)
def test_every_false_caption_states_something_false(target_clips, fault):
    # the encoder's hard negatives: a "false" caption that is true of its clip would teach the CLAP the opposite
    # (an attribute the reference leaves unstated must be flipped against the event's value, not a default)
    rng = np.random.default_rng(4)
    for clip in target_clips[:120]:
        scene = scene_of(clip)
        terms = score_terms(parse_caption(faults.false_caption(scene, rng, (fault,))), scene, Weights())
        assert terms["hallucination"] < 0 or terms["wrong_attribute"] < 0, clip.id
