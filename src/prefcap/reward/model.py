"""The reward model: r(clip, caption) from a clip vector and the caption, one head or an ensemble of heads.

The paper's model is `head="mlp"` on frozen embeddings: [clip; caption] (512 + 512 with LAION CLAP) -> 512 -> 128
-> 1, trained with a Bradley–Terry loss so that P(y1 ≻ y2 | x) = σ(r(x, y1) − r(x, y2)). r is the pre-sigmoid
score; σ(r) is what a report calls the preference probability of a caption. With `text_encoder="fine-tune"` each
head owns a trainable copy of the encoder's text side (`reward/tower.py`) and reads the caption itself, as the
standard RLHF reward model does; the clip vector stays frozen. An ensemble of k heads gives a mean reward and,
from their disagreement, an uncertainty (for RL's uncertainty penalty and for active pair selection).

A model remembers the id of the encoder whose embeddings it was trained on and refuses any other: a reward
computed in the wrong embedding space is silent garbage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import nn

from prefcap.errors import PrefcapError
from prefcap.io import atomic_write, loading, verify_checksums, write_checksums
from prefcap.reward.features import N_FLUENCY, PairFeatures
from prefcap.reward.tower import CaptionTower, caption_tower

HEADS = ("mlp", "interaction")
TEXT_ENCODERS = ("frozen", "fine-tune")
CONFIG_FILE = "reward_config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class RewardConfig:
    head: str = field(default="mlp", metadata={
        "help": "mlp: [clip; caption] (the paper); interaction: [c; t; c*t; |c-t|]"})
    hidden: tuple[int, ...] = field(default=(512, 128), metadata={"help": "hidden layer sizes of the head (JSON list)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout in the head"})
    fluency_features: bool = field(default=False, metadata={
        "help": "add repetition / truncated ending / length to the head's input"})
    ensemble: int = field(default=1, metadata={"help": "k heads; k > 1 gives an uncertainty"})
    bootstrap: bool = field(default=True, metadata={
        "help": "each ensemble head trains on a bootstrap resample of the pairs"})
    target: str = field(default="soft", metadata={"help": "soft: vote shares; majority: sign of the vote sum"})
    ties: str = field(default="half", metadata={"help": "half: a tie is a 0.5 target; drop: left out"})
    l2: float = field(default=1e-4, metadata={"help": "λ of the L2 penalty on the weights"})
    center_rewards_coefficient: float = field(default=0.01, metadata={
        "help": "μ: keeps rewards near 0 on the data (as TRL's RewardConfig)"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam step of the head"})
    batch_size: int = field(default=64, metadata={"help": "preference pairs per step"})
    epochs: int = field(default=60, metadata={"help": "most passes over the training pairs"})
    val_fraction: float = field(default=0.1, metadata={
        "help": "clip-grouped share of the training pairs for early stopping (0: none)"})
    patience: int = field(default=10, metadata={"help": "epochs without a better validation loss before stopping"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    text_encoder: str = field(default="frozen", metadata={
        "help": "frozen: the encoder's caption embedding (the paper); fine-tune: train a copy"})
    text_learning_rate: float = field(default=2e-5, metadata={
        "help": "Adam step of the fine-tuned text side (the head keeps learning_rate)"})
    frozen_layers: int = field(default=0, metadata={
        "help": "with fine-tune: keep the embeddings and this many lowest layers frozen"})

    @property
    def fine_tunes_text(self) -> bool:
        return self.text_encoder == "fine-tune"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise PrefcapError(f"unknown reward head {self.head!r}; expected one of {', '.join(HEADS)}")
        if self.text_encoder not in TEXT_ENCODERS:
            raise PrefcapError(f"unknown text_encoder {self.text_encoder!r}; expected one of "
                               f"{', '.join(TEXT_ENCODERS)}")
        if not (self.text_learning_rate > 0 and self.frozen_layers >= 0):
            raise PrefcapError("text_learning_rate must be > 0 and frozen_layers >= 0")
        if self.ensemble < 1:
            raise PrefcapError(f"ensemble must be at least 1, got {self.ensemble}")
        if not self.hidden or min(self.hidden) < 1:
            raise PrefcapError(f"hidden sizes must be positive, got {self.hidden}")
        if min(self.batch_size, self.epochs, self.patience) < 1:
            raise PrefcapError("batch_size, epochs and patience must be at least 1")
        if not (self.learning_rate > 0 and self.l2 >= 0 and self.center_rewards_coefficient >= 0
                and 0 <= self.dropout < 1 and 0 <= self.val_fraction < 1):
            raise PrefcapError("reward training needs learning_rate > 0, l2 >= 0, center_rewards_coefficient >= 0, "
                               "0 <= dropout < 1 and 0 <= val_fraction < 1")


class RewardHead(nn.Module):
    """An MLP on the clip vector and the caption vector; with a tower, the caption vector comes from the tower."""

    def __init__(self, dim: int, config: RewardConfig, tower: CaptionTower | None = None):
        super().__init__()
        self.kind = config.head
        self.tower = tower
        width = (2 if config.head == "mlp" else 4) * dim + (N_FLUENCY if config.fluency_features else 0)
        layers: list[nn.Module] = []
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, clip: torch.Tensor, text: torch.Tensor, extra: torch.Tensor,
                captions: Sequence[str] | None = None) -> torch.Tensor:
        return self.score(clip, self.caption_vector(text, captions).to(clip.device), extra)

    def caption_vector(self, text: torch.Tensor, captions: Sequence[str] | None) -> torch.Tensor:
        """The caption as the head sees it: the encoder's embedding, or with a tower, the tower's reading."""
        if self.tower is None:
            return text
        if captions is None:
            raise PrefcapError("this reward model reads the captions themselves: pass them with the vectors")
        return self.tower(captions)

    def score(self, clip: torch.Tensor, caption: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        parts = [clip, caption] if self.kind == "mlp" else [clip, caption, clip * caption, (clip - caption).abs()]
        return self.mlp(torch.cat([*parts, extra], dim=-1)).squeeze(-1)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The head's weights and, with a tower, the text side's: what is trained, kept and saved."""
        state = {f"mlp.{name}": value.detach() for name, value in self.mlp.state_dict().items()}
        if self.tower is not None:
            state |= {f"tower.{name}": value for name, value in self.tower.trainable_state().items()}
        return {name: value.clone() for name, value in state.items()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        self.mlp.load_state_dict({k[len("mlp."):]: v for k, v in state.items() if k.startswith("mlp.")})
        tower = {k[len("tower."):]: v for k, v in state.items() if k.startswith("tower.")}
        if self.tower is not None:
            self.tower.load_trainable_state(tower)
        elif tower:
            raise RuntimeError("tower weights for a model without a fine-tuned text encoder")


@dataclass
class RewardModel:
    config: RewardConfig
    encoder_id: str
    dim: int
    heads: nn.ModuleList = field(repr=False)
    metrics: dict = field(default_factory=dict)

    @classmethod
    def new(cls, config: RewardConfig, encoder_id: str, dim: int, encoder: object | None = None) -> RewardModel:
        """Fresh heads; with `text_encoder="fine-tune"`, each with its own copy of `encoder`'s text side."""
        if config.fine_tunes_text:
            if encoder is None:
                raise PrefcapError("text_encoder='fine-tune' needs the encoder whose text side it fine-tunes")
            if encoder.id != encoder_id:
                raise PrefcapError(f"encoder {encoder.id!r} is not {encoder_id!r}")
        torch.manual_seed(config.seed)
        heads = nn.ModuleList(
            RewardHead(dim, config, caption_tower(encoder, config.frozen_layers) if config.fine_tunes_text else None)
            for _ in range(config.ensemble))
        return cls(config, encoder_id, dim, heads)

    def check_encoder(self, encoder_id: str) -> None:
        _refuse_other_encoder(self.encoder_id, encoder_id)

    @torch.no_grad()
    def read_captions(self, text: torch.Tensor, captions: Sequence[str] | None = None) -> list[torch.Tensor]:
        """Each head's reading of the captions: the encoder's embedding `text`, or, for a head that fine-tuned its
        text side, its tower's reading of `captions` (the costly part of scoring). Read once, it serves both
        `rewards` and `caption_prior`."""
        self.heads.eval()
        return [head.caption_vector(text, captions) for head in self.heads]

    @torch.no_grad()
    def member_rewards(self, clip: torch.Tensor, text: torch.Tensor, extra: torch.Tensor,
                       captions: Sequence[str] | None = None,
                       readings: list[torch.Tensor] | None = None) -> torch.Tensor:
        """[k, n] pre-sigmoid rewards, one row per ensemble head. `text` is the encoder's embedding of `captions`;
        a model that fine-tuned its text side reads `captions` instead (or takes `readings` already made)."""
        readings = self.read_captions(text, captions) if readings is None else readings
        return torch.stack([head.score(clip, reading.to(clip.device), extra)
                            for head, reading in zip(self.heads, readings, strict=True)])

    def rewards(self, clip: torch.Tensor, text: torch.Tensor, extra: torch.Tensor, group_size: int = 1,
                captions: Sequence[str] | None = None,
                readings: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean reward r, its spread across heads: 0 for a single head).

        Bradley–Terry fixes each head's rewards only up to a constant per clip, and heads that differ by such a
        constant agree on every preference. When the rows come in consecutive groups of `group_size` captions of
        one clip (RL's generations), each head is first centred on its group's mean, so the spread measures
        disagreement about the captions, not about that constant."""
        members = self.member_rewards(clip, text, extra, captions, readings)
        if len(self.heads) == 1:
            return members[0], torch.zeros(members.shape[1])
        if group_size > 1:
            if members.shape[1] % group_size:
                raise PrefcapError(f"{members.shape[1]} rewards do not split into groups of {group_size}")
            grouped = members.reshape(len(self.heads), -1, group_size)
            return members.mean(dim=0), (grouped - grouped.mean(dim=2, keepdim=True)).std(dim=0).flatten()
        return members.mean(dim=0), members.std(dim=0)

    @torch.no_grad()
    def caption_prior(self, others: torch.Tensor, text: torch.Tensor, extra: torch.Tensor,
                      captions: Sequence[str] | None = None,
                      readings: list[torch.Tensor] | None = None) -> torch.Tensor:
        """[n] each caption's mean reward over the clip vectors `others` [m, d] (and the heads): what the model pays
        for the caption whatever the clip. r(x, y) minus it scores a caption against its clip, not against
        captions in general. Each caption is read once, then scored m times."""
        readings = self.read_captions(text, captions) if readings is None else readings
        n, m = len(text), len(others)
        prior = [head.score(others.repeat(n, 1), reading.to(others.device).repeat_interleave(m, dim=0),
                            extra.repeat_interleave(m, dim=0)).view(n, m).mean(dim=1)
                 for head, reading in zip(self.heads, readings, strict=True)]
        return torch.stack(prior).mean(dim=0)

    def member_margins(self, features: PairFeatures) -> torch.Tensor:
        """[k, n] r(a) − r(b) per head."""
        return (self.member_rewards(features.clip_a, features.text_a, features.extra_a, features.captions_a)
                - self.member_rewards(features.clip_b, features.text_b, features.extra_b, features.captions_b))

    def preference(self, features: PairFeatures) -> torch.Tensor:
        """P(a ≻ b) = σ(mean r(a) − mean r(b))."""
        return torch.sigmoid(self.member_margins(features).mean(dim=0))

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {f"{k}.{name}": tensor.contiguous()
                 for k, head in enumerate(self.heads) for name, tensor in head.trainable_state().items()}
        with atomic_write(folder / WEIGHTS_FILE, "wb") as handle:
            handle.write(save(state))
        with atomic_write(folder / CONFIG_FILE) as handle:
            json.dump({"config": asdict(self.config), "encoder_id": self.encoder_id, "dim": self.dim,
                       "metrics": self.metrics}, handle, indent=2)
        write_checksums(folder, [WEIGHTS_FILE, CONFIG_FILE])

    @classmethod
    def load(cls, folder: str | Path, encoder_id: str | None = None, *, encoder: object | None = None) -> RewardModel:
        """Load a saved model; with `encoder_id` (or `encoder`), refuse it unless it was trained on that encoder.
        A model that fine-tuned its text side needs `encoder` itself: its tower is rebuilt from it."""
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise PrefcapError(f"{folder}: not a reward model folder (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
        verify_checksums(folder)
        with loading(f"reward model {folder}"):
            saved = json.loads((folder / CONFIG_FILE).read_text())
            try:  # a hand-edited or foreign config: missing, unknown or mistyped keys, shapes that do not fit
                raw = saved["config"]
                config = RewardConfig(**{**raw, "hidden": tuple(raw["hidden"])})
                trained_on, dim = saved["encoder_id"], saved["dim"]
            except (KeyError, TypeError) as error:
                raise ValueError(f"{type(error).__name__}: {error}") from None
        if encoder is not None:
            encoder_id = encoder.id
        if encoder_id is not None:
            _refuse_other_encoder(trained_on, encoder_id)
        if config.fine_tunes_text and encoder is None:
            raise PrefcapError(f"{folder}: this reward model fine-tuned the text side of {trained_on!r}; load it "
                               "with that encoder (its tower is rebuilt from the encoder's architecture)")
        with loading(f"reward model {folder}"):
            try:
                model = cls.new(config, trained_on, dim, encoder)
                state = load_file(folder / WEIGHTS_FILE)
                if {name.split(".", 1)[0] for name in state} != {str(k) for k in range(config.ensemble)}:
                    raise RuntimeError(f"weights for another number of heads than ensemble={config.ensemble}")
                for k, head in enumerate(model.heads):
                    head.load_trainable_state({name[len(f"{k}."):]: value for name, value in state.items()
                                               if name.startswith(f"{k}.")})
            except (KeyError, TypeError, RuntimeError) as error:
                raise ValueError(f"{type(error).__name__}: {error}") from None
        model.metrics = saved.get("metrics", {})
        return model



def _refuse_other_encoder(trained_on: str, encoder_id: str) -> None:
    if encoder_id != trained_on:
        raise PrefcapError(f"this reward model was trained on embeddings of {trained_on!r}; refusing "
                           f"embeddings of {encoder_id!r} (a reward in another embedding space is meaningless)")
