"""The demo's sizes: every per-size setting of a run, read from one YAML file (sizes/<name>.yaml, shipped as
package data) into `DemoSize` by the typed loader in prefcap.config. `prefcap demo --config FILE` runs a file of
the same shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from prefcap.captioners.sft import SFTConfig
from prefcap.config import load_recipe
from prefcap.encoders.train import EncoderTrainConfig
from prefcap.errors import PrefcapError
from prefcap.prefs.pairs import PairsConfig
from prefcap.reward.model import RewardConfig
from prefcap.rl.dpo import DPOConfig
from prefcap.rl.trainer import RLConfig

SIZES_DIR = Path(__file__).with_name("sizes")
SIZE_NAMES = ("tiny", "demo")


@dataclass(frozen=True)
class Corpus:
    general_clips: int
    source_clips: int
    target_clips: int
    annotator_pairs: int  # pairs for the checks of the simulated annotators


@dataclass(frozen=True)
class DemoSize:
    corpus: Corpus
    encoder: EncoderTrainConfig = field(default_factory=EncoderTrainConfig)
    captioner: dict[str, int] = field(default_factory=dict)  # the baseline captioner's size overrides
    sft: SFTConfig = field(default_factory=SFTConfig)
    preferences: PairsConfig = field(default_factory=PairsConfig)  # the judgment budget over all rounds
    overlap: int = 3  # judgments per pair
    reward: RewardConfig = field(default_factory=RewardConfig)  # the reward model RL uses
    paper_reward: RewardConfig = field(default_factory=RewardConfig)  # the paper's head, scored beside it
    rl: RLConfig = field(default_factory=RLConfig)  # max_steps: the total over all rounds
    rl_eval_clips: int = 100
    dpo: DPOConfig = field(default_factory=DPOConfig)
    supervised_curve: tuple[int, ...] = ()  # --decomposition's supervised learning curve (clips)

    def corpus_sizes(self) -> dict[str, int]:
        return asdict(self.corpus)


def size_file(size: str) -> Path:
    """A size's recipe file: sizes/<name>.yaml for a named size, else `size` read as a path."""
    if size in SIZE_NAMES:
        return SIZES_DIR / f"{size}.yaml"
    path = Path(size)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        raise PrefcapError(f"unknown size {size!r}; expected one of {list(SIZE_NAMES)} or a YAML file "
                           "(prefcap demo --config FILE)")
    return path


def demo_size(size: str) -> DemoSize:
    """The settings of `size` ("tiny", "demo" or a recipe file's path)."""
    return load_recipe(size_file(size), DemoSize)


_BUILT = {name: demo_size(name) for name in SIZE_NAMES}
# Per-size views for the scripts that tune or benchmark one setting (bench/, experiments/): read from the files.
SIZES = {name: s.corpus_sizes() for name, s in _BUILT.items()}
ENCODER_CONFIGS = {name: s.encoder for name, s in _BUILT.items()}
BASELINE = {name: (s.captioner, s.sft) for name, s in _BUILT.items()}  # (captioner size overrides, SFT config)
PREFERENCES = {name: (s.preferences, s.overlap) for name, s in _BUILT.items()}
REWARD = {name: s.reward for name, s in _BUILT.items()}
PAPER_REWARD = {name: s.paper_reward for name, s in _BUILT.items()}
RL = {name: s.rl for name, s in _BUILT.items()}
RL_EVAL_CLIPS = {name: s.rl_eval_clips for name, s in _BUILT.items()}
DPO = {name: s.dpo for name, s in _BUILT.items()}
SUPERVISED_CURVE = {name: s.supervised_curve for name, s in _BUILT.items()}
