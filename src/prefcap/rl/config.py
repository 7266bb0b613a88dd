"""RL's settings: the reward it maximises (`reward_terms`, a RewardTerms: the terms and guards documented in
prefcap.rl.rewards, set as `reward_terms.clap_coef=3`) and the optimisation. Every field carries its help text,
which `prefcap rl --help` prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from transformers import SchedulerType

from prefcap.errors import PrefcapError
from prefcap.rl.rewards import RewardTerms

ALGORITHMS = ("scst", "rloo", "grpo")


@dataclass(frozen=True)
class RLConfig:
    """The reward RL maximises (its terms and guards, nested) and the optimisation."""

    # the reward terms were RLConfig's own fields until 2026-12-01: a flat key (clap_coef=3) is refused by
    # prefcap.config, naming its dotted key (reward_terms.clap_coef)
    moved_into: ClassVar[tuple[str, ...]] = ("reward_terms",)

    reward_terms: RewardTerms = field(default_factory=RewardTerms, metadata={
        "help": "the reward: the reward model's score plus and minus these terms (prefcap.rl.rewards)"})
    algorithm: str = field(default="rloo", metadata={
        "help": "the policy gradient's baseline: scst (greedy caption), rloo (leave-one-out) or grpo (group mean/std)"})
    num_generations: int = field(default=4, metadata={
        "help": "k samples per clip (scst also decodes one greedy caption per clip)"})
    batch_size: int = field(default=16, metadata={"help": "clips per step, over all processes"})
    max_steps: int = field(default=200, metadata={"help": "optimizer steps"})
    learning_rate: float = field(default=1e-5, metadata={"help": "peak learning rate of the policy (AdamW)"})
    lr_scheduler_type: str = field(default="constant_with_warmup", metadata={
        "help": "transformers scheduler name (SchedulerType), e.g. constant_with_warmup, linear, cosine"})
    warmup_steps: int = field(default=10, metadata={"help": "steps of linear learning-rate warmup"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature of the policy's captions"})
    max_new_tokens: int = field(default=32, metadata={"help": "longest caption sampled, in tokens"})
    beta: float = field(default=0.05, metadata={
        "help": "β: coefficient of KL(π‖π_ref) per caption, folded into the reward (k1)"})
    target_kl: float | None = field(default=None, metadata={
        "help": "per-caption KL to steer β towards; None: β stays fixed"})
    kl_horizon: int = field(default=100, metadata={"help": "steps over which the KL controller closes the gap"})
    epsilon: float = field(default=0.2, metadata={"help": "PPO clip range of the ratio"})
    num_iterations: int = field(default=1, metadata={"help": "optimisation passes over each batch of samples"})
    entropy_coef: float = field(default=0.0, metadata={"help": "weight of the entropy bonus in the loss"})
    scale_rewards: bool = field(default=True, metadata={
        "help": "scst / rloo: divide advantages by their batch std; grpo: by the group std"})
    mask_truncated_completions: bool = field(default=True, metadata={
        "help": "leave captions that never emitted end-of-sequence out of the loss"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    mixed_precision: str = field(default="no", metadata={"help": "no, bf16 or fp16 (accelerate)"})
    eval_every: int = field(default=25, metadata={
        "help": "steps between held-out evaluations (greedy captions of the eval clips)"})
    save_steps: int = field(default=50, metadata={"help": "steps between checkpoints"})
    save_total_limit: int = field(default=2, metadata={"help": "most checkpoints kept in OUT/checkpoints"})
    report_to: str = field(default="none", metadata={"help": "none or tensorboard"})
    collapse_guard: bool = field(default=True, metadata={
        "help": "stop (and keep the last sound weights) when held-out captions collapse"})
    min_distinct_ratio: float = field(default=0.5, metadata={
        "help": "collapse: distinct held-out captions below this share of the start's"})
    max_length_change: float = field(default=0.3, metadata={
        "help": "collapse: mean held-out caption length off the start's by more than this share"})
    load_best_model_at_end: bool = field(default=False, metadata={
        "help": "save the held-out evaluation (without a collapse) with the highest total reward, not the last"})
    seed: int = field(default=0, metadata={"help": "random seed"})

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise PrefcapError(f"unknown algorithm {self.algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
        if self.algorithm in ("rloo", "grpo") and self.num_generations < 2:
            raise PrefcapError(f"{self.algorithm} compares samples of a clip: num_generations must be >= 2")
        if min(self.num_generations, self.batch_size, self.max_steps, self.num_iterations, self.eval_every,
               self.save_steps, self.save_total_limit, self.max_new_tokens) < 1:
            raise PrefcapError("num_generations, batch_size, max_steps, num_iterations, eval_every, save_steps, "
                               "save_total_limit and max_new_tokens must be at least 1")
        if self.temperature <= 0 or self.learning_rate <= 0 or self.beta < 0 or not 0 < self.epsilon < 1:
            raise PrefcapError("temperature and learning_rate must be > 0, beta >= 0, 0 < epsilon < 1")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise PrefcapError(f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")
        schedulers = [kind.value for kind in SchedulerType]
        if self.lr_scheduler_type not in schedulers:
            raise PrefcapError(f"unknown lr_scheduler_type {self.lr_scheduler_type!r}; expected one of "
                               f"{', '.join(schedulers)}")
        if self.report_to not in ("none", "tensorboard"):
            raise PrefcapError(f"report_to must be none or tensorboard, got {self.report_to!r}")
        if not 0 <= self.min_distinct_ratio <= 1 or self.max_length_change <= 0:
            raise PrefcapError(f"min_distinct_ratio must be in [0, 1] and max_length_change > 0, got "
                               f"{self.min_distinct_ratio} and {self.max_length_change}")
