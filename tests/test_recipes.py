"""Typed recipe files (prefcap.config) and the demo's sizes read through them."""

from dataclasses import dataclass, field

import pytest

from prefcap.config import from_mapping, load_recipe
from prefcap.demo import DemoConfig, demo_size, stage_names
from prefcap.demo.sizes import SIZES_DIR
from prefcap.errors import PrefcapError
from prefcap.reward.model import RewardConfig
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
    with pytest.raises(PrefcapError, match="inner: steps"):
        from_mapping(Outer, {"inner": {"steps": "many"}}, "r.yaml")
    with pytest.raises(PrefcapError, match="repetition_coef"):
        from_mapping(RLConfig, {"repetition_penalty": 1.0}, "r.yaml")


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
