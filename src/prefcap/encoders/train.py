"""`prefcap encoder-train`: the small offline CLAP, trained here from scratch.

The model is `OfflineClapModel` (see its module for why not a tiny `ClapModel`): same interface, same
`ClapFeatureExtractor` input, same `ClapEncoder` at use. 16 kHz input, 20 ms hops, one 5 s window per
clip; the loss is the symmetric contrastive (InfoNCE) loss with a learnable temperature.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import ClapFeatureExtractor, get_cosine_schedule_with_warmup

from prefcap.data.audio import load_audio
from prefcap.data.records import Caption, Clip, references_by_clip
from prefcap.encoders.clap import ClapEncoder
from prefcap.encoders.offline_clap import OfflineClapConfig, OfflineClapModel
from prefcap.errors import PrefcapError
from prefcap.synth.faults import FALSE_FAULTS, false_caption
from prefcap.synth.grammar import keyword_caption
from prefcap.synth.lexicon import CLASS_NAMES
from prefcap.synth.scene import Scene
from prefcap.tokenizer import train_tokenizer


@dataclass(frozen=True)
class EncoderTrainConfig:
    epochs: int = field(default=20, metadata={"help": "passes over the training clips"})
    batch_size: int = field(default=64, metadata={"help": "clips per step"})
    learning_rate: float = field(default=2e-3, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.05, metadata={"help": "share of the steps with linear learning-rate warmup"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    sample_rate: int = field(default=16_000, metadata={"help": "audio sample rate (Hz) of the feature extractor"})
    window_seconds: float = field(default=5.0, metadata={"help": "audio window length in seconds"})
    hop_length: int = field(default=320, metadata={"help": "mel hop in samples (20 ms frames: 251 per 5 s window)"})
    n_mels: int = field(default=64, metadata={"help": "mel bands"})
    audio_channels: tuple[int, ...] = field(default=(128, 256, 256, 256), metadata={
        "help": "channels of the audio CNN's blocks (JSON list)"})
    text_hidden: int = field(default=128, metadata={"help": "width of the text transformer"})
    text_layers: int = field(default=2, metadata={"help": "layers of the text transformer"})
    vocab_size: int = field(default=1000, metadata={"help": "size of the trained tokenizer's vocabulary"})
    max_text_tokens: int = field(default=64, metadata={"help": "longest caption, in tokens"})
    projection_dim: int = field(default=512, metadata={"help": "shared embedding size (LAION CLAP's)"})
    event_head: bool = field(default=True, metadata={
        "help": "auxiliary multi-label event loss on synthetic clips (their labels are known)"})
    event_loss_weight: float = field(default=3.0, metadata={"help": "weight of that event loss"})
    keyword_prob: float = field(default=0.5, metadata={
        "help": "share of synthetic clips paired with a label caption instead of a reference"})
    # per synthetic clip in a batch, one fluent caption that is false of it (an event swapped or added, an
    # attribute flipped) joins the batch as a negative: the embedding must tell "what is said" apart, not only
    # "what it is about" -- what a reward model built on it needs
    hard_negatives: bool = field(default=True, metadata={
        "help": "add, per synthetic clip, a fluent caption that is false of it as a negative"})
    hard_negative_faults: tuple[str, ...] = field(default=("swap", "add", "attribute"), metadata={
        "help": "the faults that make those captions false (JSON list of swap, add, attribute)"})

    def __post_init__(self) -> None:
        if min(self.epochs, self.batch_size, self.vocab_size, self.max_text_tokens, self.projection_dim) < 1:
            raise PrefcapError("epochs, batch_size, vocab_size, max_text_tokens and projection_dim must be >= 1")
        if not (self.learning_rate > 0 and 0 <= self.keyword_prob <= 1 and 0 <= self.warmup_ratio < 1):
            raise PrefcapError("encoder training needs learning_rate > 0, 0 <= keyword_prob <= 1 and "
                               "0 <= warmup_ratio < 1")
        unknown = sorted(set(self.hard_negative_faults) - set(FALSE_FAULTS))
        if unknown or (self.hard_negatives and not self.hard_negative_faults):
            raise PrefcapError(f"hard_negative_faults must name some of {', '.join(FALSE_FAULTS)} (the faults that "
                               f"make a caption false), got {list(self.hard_negative_faults)}")


def build_clap(config: EncoderTrainConfig, vocab_size: int) -> tuple[OfflineClapModel, ClapFeatureExtractor]:
    extractor = ClapFeatureExtractor(
        feature_size=config.n_mels, sampling_rate=config.sample_rate, hop_length=config.hop_length,
        max_length_s=config.window_seconds, fft_window_size=4 * config.hop_length, frequency_min=50,
        frequency_max=config.sample_rate // 2, padding="repeatpad", truncation="rand_trunc",
    )
    model = OfflineClapModel(OfflineClapConfig(
        vocab_size=vocab_size, n_mels=config.n_mels, audio_channels=config.audio_channels,
        text_hidden=config.text_hidden, text_layers=config.text_layers, max_text_tokens=config.max_text_tokens,
        projection_dim=config.projection_dim, event_classes=len(CLASS_NAMES) if config.event_head else 0,
        event_loss_weight=config.event_loss_weight,
    ))
    return model, extractor


def _window_features(encoder: ClapEncoder, clips: Sequence[Clip], config: EncoderTrainConfig) -> torch.Tensor:
    """Log-mel input of a few clips at a time (keeps memory flat); each clip must fit one window."""
    features, owners = encoder.audio_features([load_audio(c.audio_path, config.sample_rate) for c in clips],
                                              config.sample_rate)
    if len(owners) != len(clips):
        raise PrefcapError(f"training clips must be at most {config.window_seconds} s long (one window each)")
    return features


def _training_text(clip: Clip, references: list[str], keyword_prob: float,
                   rng: np.random.Generator) -> tuple[str, frozenset[str] | None]:
    """A random reference, or for synthetic clips sometimes a random subset of their labels as a caption.

    Returns the text and, for label captions, the classes it names (for the multi-positive loss)."""
    if "scene" in clip.metadata and rng.random() < keyword_prob:
        classes = sorted(Scene.from_dict(clip.metadata["scene"]).classes)
        named = list(rng.permutation(classes)[: rng.integers(1, len(classes) + 1)])
        return keyword_caption(named), frozenset(named)
    return references[rng.integers(len(references))], None


def positives(batch_classes: Sequence[frozenset[str] | None], texts: Sequence[frozenset[str] | None]) -> torch.Tensor:
    """[texts, clips] 1 where the text is true of the clip: itself, or a label caption naming only classes the
    clip has. Without it, other clips with a siren would be pushed away from "the sound of a siren"."""
    mask = torch.eye(len(texts))
    for i, named in enumerate(texts):
        if named is None:
            continue
        for j, present in enumerate(batch_classes):
            if present is not None and named <= present:
                mask[i, j] = 1.0
    return mask


def train_encoder(clips: Sequence[Clip], captions: Sequence[Caption], out_dir: str | Path,
                  config: EncoderTrainConfig = EncoderTrainConfig(), progress: bool = True,  # noqa: B008
                  device: str = "cpu") -> ClapEncoder:
    """Train on (clip, one of its references) pairs; a new reference is drawn for each clip every epoch, on
    `device` ("cpu" or "cuda")."""
    references = references_by_clip(captions, source=None)
    clips = [c for c in clips if c.id in references and c.audio_path]
    if len(clips) < config.batch_size:
        raise PrefcapError(f"encoder training needs at least {config.batch_size} captioned clips, got {len(clips)}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    tokenizer = train_tokenizer((t for texts in references.values() for t in texts), config.vocab_size)
    model, extractor = build_clap(config, len(tokenizer))
    encoder = ClapEncoder(model, extractor, tokenizer, "offline", device=device, max_text_tokens=config.max_text_tokens)
    features = torch.cat([_window_features(encoder, clips[i : i + 256], config) for i in range(0, len(clips), 256)])

    clip_classes = [Scene.from_dict(c.metadata["scene"]).classes if "scene" in c.metadata else None for c in clips]
    event_labels = None
    if config.event_head and all(classes is not None for classes in clip_classes):
        event_labels = torch.tensor([[c in classes for c in CLASS_NAMES] for classes in clip_classes]).float()
    steps_per_epoch = len(clips) // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = get_cosine_schedule_with_warmup(optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps)
    model.train()
    start, losses = time.perf_counter(), []
    bar = tqdm(total=total_steps, desc="encoder-train", unit="step", disable=not progress)
    for _ in range(config.epochs):
        order = rng.permutation(len(clips))
        for step in range(steps_per_epoch):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            texts, named = zip(*(_training_text(clips[i], references[clips[i].id], config.keyword_prob, rng)
                                 for i in batch), strict=True)
            mask = positives([clip_classes[i] for i in batch], named)
            if config.hard_negatives:
                negatives = [false_caption(Scene.from_dict(clips[i].metadata["scene"]), rng,
                                           config.hard_negative_faults)
                             for i in batch if "scene" in clips[i].metadata]
                texts = (*texts, *negatives)
                mask = torch.cat([mask, torch.zeros(len(negatives), len(batch))])
            on = encoder.device  # the batch goes where the model is (a no-op on the CPU)
            output = model(**{k: v.to(on) for k, v in encoder.tokenize(texts).items()},
                           input_features=features[batch].to(on), return_loss=True, positive_mask=mask.to(on),
                           event_labels=event_labels[batch].to(on) if event_labels is not None else None)
            optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(output.loss.item())
            bar.update()
            bar.set_postfix(loss=f"{np.mean(losses[-steps_per_epoch:]):.3f}")
    bar.close()
    model.eval()

    out_dir = Path(out_dir)
    encoder.save(out_dir)
    metrics = {"train_loss_first_epoch": float(np.mean(losses[:steps_per_epoch])),
               "train_loss_last_epoch": float(np.mean(losses[-steps_per_epoch:])), "steps": total_steps,
               "clips": len(clips), "seconds": time.perf_counter() - start, "config": asdict(config)}
    (out_dir / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
    return ClapEncoder.from_pretrained(out_dir, device=device)
