"""Typed recipe files (prefcap.config) and the demo's sizes read through them."""

from dataclasses import dataclass, field

import pytest

from prefcap.config import apply_overrides, config_from_file, from_mapping, load_recipe
from prefcap.demo import DemoConfig, demo_size, stage_names
from prefcap.demo.sizes import SIZES_DIR, DemoSize
from prefcap.errors import PrefcapError
from prefcap.reward.model import RewardConfig
from prefcap.rl.rewards import RewardTerms
from prefcap.rl.trainer import RLConfig


@dataclass(frozen=True)
class Inner:
    rate: float = 0.1
    steps: int = 1


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    hidden: tuple[int, ...] = ()
    sizes: dict[str, int] = field(default_factory=dict)
    name: str | None = None


def test_numbers_take_the_declared_type(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("inner: {rate: 1e-4, steps: 3}\nhidden: [32, 16]\nsizes: {d_model: 8}\n")
    recipe = load_recipe(path, Outer)
    assert recipe == Outer(Inner(1e-4, 3), (32, 16), {"d_model": 8})
    assert type(recipe.inner.rate) is float and type(recipe.hidden) is tuple


def test_unknown_and_mistyped_keys_are_refused_by_name():
    with pytest.raises(PrefcapError, match="unknown Inner field.*stpes"):
        from_mapping(Outer, {"inner": {"stpes": 3}}, "r.yaml")
    with pytest.raises(PrefcapError, match="r.yaml: inner.steps: expected a value of type int, got 'many'"):
        from_mapping(Outer, {"inner": {"steps": "many"}}, "r.yaml")
    with pytest.raises(PrefcapError, match="'repetition_penalty' is now 'reward_terms.repetition_coef'"):
        from_mapping(RLConfig, {"repetition_penalty": 1.0}, "r.yaml")


def test_the_reward_terms_are_a_nested_part_of_the_rl_config(tmp_path):
    """Set by dotted keys or a nested mapping, merged into the current terms; a flat key names its new home."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("rl:\n  beta: 0.2\n  reward_terms:\n    clap_coef: 3\n    min_words: 9\n")
    config = config_from_file(RLConfig(), recipe, "rl")
    assert (config.beta, config.reward_terms) == (0.2, RewardTerms(clap_coef=3.0, min_words=9))
    config = apply_overrides(config, ["reward_terms.min_words=5", "reward_terms.length_penalty=0"])
    assert config.reward_terms == RewardTerms(clap_coef=3.0, min_words=5, length_penalty=0.0)
    both = apply_overrides(RLConfig(), ["reward_terms.min_words=5", 'reward_terms={"clap_coef": 1}'])
    assert both.reward_terms == RewardTerms(clap_coef=1.0, min_words=5)
    for flat in ("clap_coef=1", "min_words=5"):
        key = flat.partition("=")[0]
        with pytest.raises(PrefcapError, match=f"'{key}' is now 'reward_terms.{key}'"):
            apply_overrides(RLConfig(), [flat])
    with pytest.raises(PrefcapError, match="'repetition_penalty' is now 'reward_terms.repetition_coef'"):
        apply_overrides(RLConfig(), ["repetition_penalty=2"])
    with pytest.raises(PrefcapError, match="unknown RewardTerms field 'clap'"):
        apply_overrides(RLConfig(), ["reward_terms.clap=1"])
    with pytest.raises(PrefcapError, match="beta is not a nested config"):
        apply_overrides(RLConfig(), ["beta.value=1"])
    recipe.write_text("rl:\n  clap_coef: 3\n")
    with pytest.raises(PrefcapError, match="rl: RLConfig field 'clap_coef' is now 'reward_terms.clap_coef'"):
        config_from_file(RLConfig(), recipe, "rl")
    with pytest.raises(PrefcapError, match="clip_relative_coef must be >= 0"):
        apply_overrides(RLConfig(), ["reward_terms.clip_relative_coef=-1"])
    with pytest.raises(PrefcapError, match="reward_terms is also given whole"):
        apply_overrides(RLConfig(), ["reward_terms=null", "reward_terms.clap_coef=1"])
    recipe.write_text("rl:\n  reward_terms:\n  #  clap_coef: 3\n")  # every line commented out: no change
    assert config_from_file(RLConfig(), recipe, "rl") == RLConfig()


def test_only_fields_that_moved_are_pointed_to_their_new_key():
    """A key that was never a field is unknown, even where a nested config has a field of that name."""
    fields = {"corpus": {"general_clips": 1, "source_clips": 1, "target_clips": 1, "annotator_pairs": 1}}
    for key in ("seed", "max_steps", "clap_coef"):
        with pytest.raises(PrefcapError, match=f"unknown DemoSize field '{key}'"):
            from_mapping(DemoSize, {**fields, key: 1}, "mine.yaml")


def test_the_demo_sizes_load_typed():
    demo = demo_size("demo")
    assert demo.reward.text_learning_rate == 1e-4 and type(demo.reward.text_learning_rate) is float
    assert isinstance(demo.reward, RewardConfig) and demo.rl.learning_rate == 5e-5
    assert demo_size("tiny").supervised_curve == (8, 16)


def test_a_recipe_file_is_a_size(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text((SIZES_DIR / "tiny.yaml").read_text().replace("[8, 16]", "[4]"))
    config = DemoConfig(size=str(path), decomposition=True)
    assert "supervised_4" in stage_names(config)
    with pytest.raises(PrefcapError, match="unknown size"):
        DemoConfig(size="huge")
    path.write_text("corpus: {general_clips: 1, source_clips: 1, target_clips: 1, annotator_pairs: 1}\nrl: {foo: 1}\n")
    with pytest.raises(PrefcapError, match="unknown RLConfig field.*foo"):
        DemoConfig(size=str(path))
