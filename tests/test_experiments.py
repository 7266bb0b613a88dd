"""The reward-ceiling diagnostic's inputs must mean what its README table says they mean."""

import importlib.util
from pathlib import Path

import numpy as np

from prefcap.synth import grammar
from prefcap.synth.judge import scene_of

_SPEC = importlib.util.spec_from_file_location(
    "reward_ceiling", Path(__file__).parents[1] / "experiments" / "reward_ceiling.py")
reward_ceiling = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(reward_ceiling)


def test_scene_and_caption_vectors_share_coordinates(target_clips):
    rng = np.random.default_rng(0)
    for clip in target_clips[:60]:
        scene = scene_of(clip)
        spec = grammar.spec_from_scene(scene, rng, attribute_prob=1.0)
        clip_vector = reward_ceiling.scene_vector(clip).reshape(-1, 7)
        true_caption = reward_ceiling.caption_vector(grammar.render(spec, 1)).reshape(-1, 7)
        # a complete, true caption names exactly the clip's events and states only values the clip has
        assert np.array_equal(true_caption[:, 0] > 0, clip_vector[:, 0] > 0), clip.id
        assert (clip_vector[true_caption > 0] > 0).all(), clip.id
        flipped = grammar.flip_attribute(spec, 0, "loudness", scene.events[scene.steps[0][0]].attributes["loudness"])
        false_caption = reward_ceiling.caption_vector(grammar.render(flipped, 1)).reshape(-1, 7)
        assert (clip_vector[false_caption > 0] < 0).any(), clip.id


def test_fluency_counts_see_a_stutter_and_a_cut(target_clips):
    rng = np.random.default_rng(1)
    text = grammar.reference_captions(scene_of(target_clips[0]), seed=3, n=1)[0]
    clean = reward_ceiling.fluency_counts(text)
    assert reward_ceiling.fluency_counts(grammar.repeat_phrase(text, rng))[0] > clean[0]
    assert reward_ceiling.fluency_counts(grammar.truncate(text, rng))[1] > clean[1]
