"""Reward-model recipes: the few end-to-end jobs the CLI and the demo run, each readable top to bottom.

- `train_from_store`: judgments in a store + a frozen encoder -> a trained, evaluated, saved reward model;
- `fense_eval` / `fense_cross_validation`: the reference-conditioned model on FENSE-format human judgments.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from prefcap.data.records import Clip
from prefcap.encoders.base import AudioTextEncoder
from prefcap.encoders.cache import EmbeddingCache
from prefcap.errors import PrefcapError
from prefcap.io import atomic_write
from prefcap.prefs.pairs import Scorer
from prefcap.prefs.store import Store
from prefcap.reward.data import PreferencePair, clip_folds, pairs_from_rows, split_by_clip
from prefcap.reward.evaluate import evaluate_reward, learning_curve
from prefcap.reward.features import PairFeatures, TextEncoder, fluency_features, pair_features
from prefcap.reward.model import RewardConfig, RewardModel
from prefcap.reward.train import train_reward

FENSE_CATEGORIES = ("HC", "HI", "HM", "MM")
LEARNING_CURVE_BUDGETS = (125, 250, 500, 1000)


def audio_embeddings(store: Store, encoder: AudioTextEncoder, clip_ids: Sequence[str], cache_root: str | Path | None,
                     progress: bool = True) -> dict[str, torch.Tensor]:
    """Audio embedding of each clip, through the embedding cache when `cache_root` is given."""
    clips = [store.clip(clip_id) for clip_id in sorted(set(clip_ids))]
    missing = [c.id for c in clips if not c.audio_path]
    if missing:
        raise PrefcapError(f"{len(missing)} judged clips have no audio (e.g. {missing[0]!r}): use --mode reference")
    if cache_root is None:
        with tempfile.TemporaryDirectory() as tmp:
            vectors = EmbeddingCache(tmp, encoder).embed_clips(clips, progress=progress)
    else:
        vectors = EmbeddingCache(cache_root, encoder).embed_clips(clips, progress=progress)
    return {clip.id: vector for clip, vector in zip(clips, vectors, strict=True)}


def store_features(store: Store, pairs: list[PreferencePair], encoder: TextEncoder, mode: str, fluency: bool,
                   cache_root: str | Path | None = None, progress: bool = True) -> PairFeatures:
    if mode == "audio":
        if not isinstance(encoder, AudioTextEncoder):
            raise PrefcapError("mode 'audio' needs an audio-text encoder (a CLAP), not a text-only one")
        audio = audio_embeddings(store, encoder, [p.clip_id for p in pairs], cache_root, progress)
        return pair_features(pairs, encoder, audio=audio, fluency=fluency)
    if mode == "reference":
        references = {clip_id: store.references(clip_id) for clip_id in {p.clip_id for p in pairs}}
        return pair_features(pairs, encoder, references=references, fluency=fluency)
    raise PrefcapError(f"unknown mode {mode!r}; expected 'audio' or 'reference'")


def train_from_store(store: Store, encoder: TextEncoder, out_dir: str | Path, config: RewardConfig, *,
                     mode: str = "audio", test_fraction: float = 0.2, cache_root: str | Path | None = None,
                     curve: bool = False, progress: bool = True) -> dict:
    """Train on the store's judgments of (1 − test_fraction) of the clips, evaluate on the rest, save to out_dir:
    weights + config (with the encoder id), metrics.json (with the learning curve if asked), split.json and
    reliability.png."""
    pairs = pairs_from_rows(store.judgment_rows())
    if len(pairs) < 10:
        raise PrefcapError(f"{store.url}: {len(pairs)} judged pairs; a reward model needs at least 10")
    train, test = split_by_clip(pairs, test_fraction, seed=config.seed)
    features = store_features(store, pairs, encoder, mode, config.fluency_features, cache_root, progress)
    rows = {id(p): k for k, p in enumerate(pairs)}
    train_features = features.select([rows[id(p)] for p in train])
    test_features = features.select([rows[id(p)] for p in test])

    model = train_reward(train, train_features, config, encoder.id, progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    heldout = evaluate_reward(model, test, test_features, plot=out_dir / "reliability.png")
    metrics = {"mode": mode, "train_pairs": len(train), "heldout": heldout, "training": model.metrics}
    if curve:
        def trainer(subset, subset_features, subset_config):
            return train_reward(subset, subset_features, subset_config, encoder.id, progress=False)

        metrics["learning_curve"] = learning_curve(
            train, train_features, test, test_features, config, trainer,
            [*[b for b in LEARNING_CURVE_BUDGETS if b < len(train)], len(train)], seed=config.seed)
    model.metrics = metrics
    model.save(out_dir)
    _write_json(out_dir / "metrics.json", metrics)
    _write_json(out_dir / "split.json", {"test_clips": sorted({p.clip_id for p in test}),
                                         "test_fraction": test_fraction, "seed": config.seed})
    return metrics


def evaluate_saved(model_dir: str | Path, store: Store, encoder: TextEncoder, *, all_pairs: bool = False,
                   cache_root: str | Path | None = None) -> dict:
    """A saved model on a store's judgments: its held-out clips (split.json), or every pair with `all_pairs`."""
    model = RewardModel.load(model_dir, encoder_id=encoder.id)
    pairs = pairs_from_rows(store.judgment_rows())
    split = Path(model_dir) / "split.json"
    if not all_pairs:
        if not split.is_file():
            raise PrefcapError(f"{split} is missing: pass --all to evaluate on every judged pair")
        held_out = set(json.loads(split.read_text())["test_clips"])
        pairs = [p for p in pairs if p.clip_id in held_out]
    if not pairs:
        raise PrefcapError(f"{store.url}: no judged pairs to evaluate on")
    mode = model.metrics.get("mode", "audio")
    features = store_features(store, pairs, encoder, mode, model.config.fluency_features, cache_root, progress=False)
    return evaluate_reward(model, pairs, features)


def reward_scorer(model: RewardModel, encoder: AudioTextEncoder, cache_root: str | Path) -> Scorer:
    """(clip, candidate texts) -> [heads, texts] rewards: what `prefcap pairs --strategy uncertain` ranks pairs by."""
    model.check_encoder(encoder.id)
    if model.metrics.get("mode", "audio") != "audio":
        raise PrefcapError("only an audio-conditioned reward model can score candidates of audio clips")
    cache = EmbeddingCache(cache_root, encoder)

    def score(clip: Clip, texts: list[str]) -> np.ndarray:
        audio = cache.embed_clips([clip], progress=False)[0].expand(len(texts), -1)
        extra = fluency_features(texts) if model.config.fluency_features else torch.zeros(len(texts), 0)
        return model.member_rewards(audio, encoder.embed_text(texts), extra).numpy()

    return score


def load_fense(path: str | Path) -> tuple[list[PreferencePair], dict[str, list[str]]]:
    """FENSE-format judgments as pairs (with their HC / HI / HM / MM category) and each clip's references."""
    from prefcap.prefs.formats import import_fense

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "fense.sqlite")
        import_fense(store, path)
        pairs = pairs_from_rows(store.judgment_rows())
        references = {clip.id: store.references(clip.id) for clip in store.clips()}
        store.close()
    return pairs, references


def fense_accuracy(train: tuple[list[PreferencePair], dict], test: tuple[list[PreferencePair], dict],
                   config: RewardConfig, encoder: TextEncoder) -> dict:
    """Train the reference-conditioned model on `train`, return FENSE-protocol accuracy on `test`."""
    (train_pairs, train_refs), (test_pairs, test_refs) = train, test
    train_features = pair_features(train_pairs, encoder, references=train_refs, fluency=config.fluency_features)
    test_features = pair_features(test_pairs, encoder, references=test_refs, fluency=config.fluency_features)
    model = train_reward(train_pairs, train_features, config, encoder.id, progress=False)
    return fense_scores(model.preference(test_features).numpy(), test_pairs)


def fense_scores(probability: np.ndarray, pairs: Sequence[PreferencePair]) -> dict:
    """{"HC": f, "HI": f, "HM": f, "MM": f, "total": f}: accuracy on pairs with a non-zero vote sum."""
    labels = np.array([p.label for p in pairs])
    correct = (probability > 0.5) == (labels > 0)
    scores = {}
    for category in (*FENSE_CATEGORIES, "total"):
        mask = (labels != 0) & np.array([category == "total" or p.category == category for p in pairs])
        scores[category] = float(correct[mask].mean()) if mask.any() else None
    scores["labelled_pairs"] = int((labels != 0).sum())
    return scores


def fense_cross_validation(path: str | Path, config: RewardConfig, encoder: TextEncoder, folds: int = 5) -> dict:
    """Clip-grouped k-fold cross-validation: every pair is predicted by a model that never saw its clip."""
    pairs, references = load_fense(path)
    # a pair's features depend on its own clip only, so they are computed once for every fold
    features = pair_features(pairs, encoder, references=references, fluency=config.fluency_features)
    probability = np.zeros(len(pairs))
    for k, test_rows in enumerate(clip_folds(pairs, folds, seed=config.seed)):
        test_set = set(test_rows)
        train_rows = [i for i in range(len(pairs)) if i not in test_set]
        model = train_reward([pairs[i] for i in train_rows], features.select(train_rows),
                             replace(config, seed=config.seed + k), encoder.id, progress=False)
        probability[test_rows] = model.preference(features.select(test_rows)).numpy()
    return {**fense_scores(probability, pairs), "folds": folds, "config": asdict(config)}


def _write_json(path: Path, payload: dict) -> None:
    with atomic_write(path) as handle:
        json.dump(payload, handle, indent=2, default=float)
