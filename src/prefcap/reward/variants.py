"""Reward-model research variants the demo trains beside the reward model RL uses: the frozen-embedding variants
of the paper's head, their accuracy on the adversarial suite, and an ensemble's uncertainty on groups of clips."""


from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from prefcap.data.records import Clip
from prefcap.encoders.cache import EmbeddingCache
from prefcap.encoders.clap import ClapEncoder
from prefcap.reward.data import PreferencePair
from prefcap.reward.features import pair_features
from prefcap.reward.model import RewardModel
from prefcap.synth.adversarial import adversarial_pairs
from prefcap.synth.judge import scene_of

PAPER_VARIANT = "paper head (mlp, frozen)"
# with --diagnostics: the frozen-embedding variants of the paper's head, a learning curve and ensemble uncertainty
DIAGNOSTIC_VARIANTS = {
    "interaction head": {"head": "interaction"},
    "fluency features": {"fluency_features": True},
    "ensemble of 5": {"ensemble": 5},
    "interaction + fluency + ensemble of 5": {"head": "interaction", "fluency_features": True, "ensemble": 5},
}


UNCERTAINTY_ENSEMBLE = "ensemble of 5"  # the variant whose spread the demo measures
UNCERTAINTY_CAPTIONS = 5  # the references of each clip: the same kind of caption for every group of clips


def ensemble_uncertainty(ensemble: RewardModel, encoder: ClapEncoder, trained_on: list[Clip],
                         held_out: dict[str, list[Clip]], references: dict[str, list[str]],
                         cache_root: Path) -> dict[str, dict]:
    """Where an ensemble trained on the target `prefs` clips is unsure: its mean group-relative spread
    (`RewardModel.rewards`) over the reference captions of the clips it trained on, held-out target clips,
    held-out target clips whose event combination it never saw, and source-domain clips. Scoring the same kind
    of caption everywhere leaves the clips as the only difference. With a 95 % clip-bootstrap interval; the raw
    spread, which also counts each head's free per-clip constant, is shown beside it. `held_out` holds the
    "target" and "source" test clips, `references` every clip's reference captions."""
    clips = held_out
    seen_events = {frozenset(scene_of(clip).classes) for clip in trained_on}
    groups = {
        "target clips it trained on": trained_on,
        "held-out target clips": clips["target"],
        "held-out target clips, unseen event combinations": [
            c for c in clips["target"] if frozenset(scene_of(c).classes) not in seen_events],
        "source-domain clips": clips["source"],
    }
    cache = EmbeddingCache(cache_root, encoder)
    rng = np.random.default_rng(0)  # a fixed seed, not the run's: the bootstrap draws are the same for every seed
    spread = {}
    for name, group in groups.items():
        if not group:
            spread[name] = {"clips": 0, "relative": None, "relative_ci": None, "raw": None}
            continue
        audio = cache.embed_clips(group, progress=False).repeat_interleave(UNCERTAINTY_CAPTIONS, dim=0)
        texts = [text for clip in group for text in references[clip.id][:UNCERTAINTY_CAPTIONS]]
        text, no_extra = encoder.embed_text(texts), torch.zeros(len(texts), 0)
        relative = ensemble.rewards(audio, text, no_extra, UNCERTAINTY_CAPTIONS, captions=texts)[1]
        per_clip = relative.reshape(len(group), UNCERTAINTY_CAPTIONS).mean(dim=1).numpy()
        resampled = rng.choice(per_clip, (1000, len(per_clip))).mean(axis=1)  # clip bootstrap
        spread[name] = {"clips": len(group), "relative": float(per_clip.mean()),
                        "relative_ci": [float(np.quantile(resampled, 0.025)), float(np.quantile(resampled, 0.975))],
                        "raw": float(ensemble.rewards(audio, text, no_extra, captions=texts)[1].mean())}
    return spread


def adversarial_accuracy(models: dict[str, RewardModel], encoder: ClapEncoder, clips: list[Clip],
                         cache: Path, seed: int) -> dict[str, dict[str, float]]:
    """{model: {kind: share of the adversarial suite's pairs of that kind where the model scores the careful
    caption above the adversarial one}} on `clips`."""
    rows = adversarial_pairs(clips, seed=seed)
    vectors = EmbeddingCache(cache, encoder).embed_clips(clips, progress=False)
    audio = dict(zip((c.id for c in clips), vectors, strict=True))
    pairs = [PreferencePair(row["clip_id"], row["better"], row["worse"], 1, 0, 0, row["kind"]) for row in rows]
    kinds = sorted({row["kind"] for row in rows})
    features = pair_features(pairs, encoder, audio=audio, fluency=True)
    result = {}
    for name, model in models.items():
        correct = model.preference(features.for_model(model.config.fluency_features)).numpy() > 0.5
        result[name] = {kind: float(np.mean([c for c, p in zip(correct, pairs, strict=True) if p.category == kind]))
                        for kind in kinds}
    return result


def variant_slug(name: str) -> str:
    """A variant's folder name under reward/variants/ ("paper head (mlp, frozen)" -> "paper-head-mlp-frozen")."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


