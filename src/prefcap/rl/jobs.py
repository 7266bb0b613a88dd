"""RL and DPO as the CLI and the demo run them: from paths in a run folder to a trained captioner.

`run_rl` reads clips from a manifest, but hands the trainer only their audio and ids (rl/data.py); the reward
model's audio embeddings come from the embedding cache.
"""

from __future__ import annotations

from pathlib import Path

from prefcap.captioners.load import load_captioner
from prefcap.data.records import read_clips
from prefcap.encoders.base import AudioTextEncoder
from prefcap.encoders.cache import EmbeddingCache
from prefcap.errors import PrefcapError
from prefcap.prefs.store import Store
from prefcap.reward.model import RewardModel
from prefcap.rl.data import load_rl_audio
from prefcap.rl.dpo import DPOConfig, train_dpo
from prefcap.rl.rewards import CaptionReward
from prefcap.rl.trainer import RLConfig, train_rl


def run_rl(captioner: str | Path, reward_dir: str | Path | CaptionReward, encoder: AudioTextEncoder,
           clips_file: str | Path,
           out: str | Path, config: RLConfig, *, split: str = "rl", eval_split: str | None = "val",
           eval_clips: int = 100, cache_root: str | Path | None = None, reference: str | Path | None = None,
           resume: bool = False, progress: bool = True, device: str | None = None) -> dict:
    """RL on the audio of `clips_file`'s `split` clips, evaluated on the first `eval_clips` of `eval_split`. The KL
    is taken to `reference` (a captioner; default: `captioner` itself): a later preference round continues from
    the last RL policy and keeps the baseline as its anchor. `reward_dir` may also be a ready `CaptionReward`
    (a diagnostic run's stand-in for the reward model)."""
    policy = load_captioner(captioner, device=device)
    anchor = load_captioner(reference, device=device) if reference is not None else None
    clips = read_clips(clips_file)
    train = [c for c in clips if c.split == split]
    held_out = [c for c in clips if c.split == eval_split][:eval_clips] if eval_split else []
    if not train:
        raise PrefcapError(f"{clips_file}: no clips in split {split!r}")
    cache = EmbeddingCache(cache_root or Path(out) / "cache", encoder)
    embeddings = cache.embed_clips(train, progress=progress)
    reward = (CaptionReward(RewardModel.load(reward_dir, encoder=encoder), encoder, config.reward_terms,
                            clip_pool=embeddings)
              if isinstance(reward_dir, str | Path) else reward_dir)
    return train_rl(policy, reward, load_rl_audio(train, policy.sample_rate, progress), embeddings, out, config,
                    eval_clips=load_rl_audio(held_out, policy.sample_rate, progress) if held_out else (),
                    eval_embeddings=cache.embed_clips(held_out, progress=progress) if held_out else None,
                    reference=anchor, resume=resume, progress=progress, device=device)


def run_dpo(captioner: str | Path, store: Store, out: str | Path, config: DPOConfig, *, progress: bool = True,
            device: str | None = None) -> dict:
    return train_dpo(load_captioner(captioner, device=device), store, out, config, progress)
