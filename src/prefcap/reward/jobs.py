"""Reward-model jobs: the few end-to-end jobs the CLI and the demo run, each readable top to bottom.

- `train_from_store`: judgments in a store + a frozen encoder -> a trained, evaluated, saved reward model;
- `fense_eval` / `fense_cross_validation`: the reference-conditioned model on FENSE-format human judgments.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from prefcap.data.records import Clip
from prefcap.encoders.base import AudioTextEncoder
from prefcap.encoders.cache import EmbeddingCache
from prefcap.errors import PrefcapError
from prefcap.io import atomic_write
from prefcap.prefs.pairs import Scorer
from prefcap.prefs.store import Store
from prefcap.reward.data import PreferencePair, clip_folds, pairs_from_rows, split_by_clip
from prefcap.reward.features import PairFeatures, TextEncoder, fluency_features, pair_features
from prefcap.reward.model import RewardConfig, RewardModel
from prefcap.reward.quality import evaluate_reward, learning_curve, preference_metrics
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

    model = train_reward(train, train_features, config, encoder.id, progress, encoder)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    heldout = evaluate_reward(model, test, test_features, plot=out_dir / "reliability.png")
    metrics = {"mode": mode, "train_pairs": len(train), "heldout": heldout, "training": model.metrics,
               "labelled_reward_max": model.metrics["labelled_reward_max"]}
    if curve:
        def trainer(subset, subset_features, subset_config):
            return train_reward(subset, subset_features, subset_config, encoder.id, progress=False, encoder=encoder)

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
    model = RewardModel.load(model_dir, encoder=encoder)
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
        return model.member_rewards(audio, encoder.embed_text(texts), extra, texts).numpy()

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


# The reference-conditioned design for FENSE-format data, chosen inside each training fold between two candidates
# by the NLL of clip-grouped validation pairs: MiniLM's text side fine-tuned with an interaction head on
# [mean reference vector; caption vector], and the best frozen-embedding head (docs/results.md has the figures).
FENSE_CANDIDATES = {
    "fine-tuned MiniLM, interaction head": RewardConfig(head="interaction", text_encoder="fine-tune", hidden=(256, 64),
                                                         batch_size=32, epochs=4, patience=1, val_fraction=0.15,
                                                         text_learning_rate=3e-5),
    "frozen MiniLM, interaction + fluency + ensemble of 5": RewardConfig(head="interaction", fluency_features=True,
                                                                         ensemble=5, val_fraction=0.15),
}
# Always reported beside it: the paper's head on frozen embeddings, the reproduction.
FENSE_VARIANTS = {"paper head (mlp, frozen)": RewardConfig(val_fraction=0.15)}


def fense_accuracy(train: tuple[list[PreferencePair], dict], test: tuple[list[PreferencePair], dict],
                   candidates: Mapping[str, RewardConfig], encoder: TextEncoder,
                   variants: Mapping[str, RewardConfig] | None = None, seed: int = 0) -> dict:
    """Train on one FENSE-format set and score on another, choosing among `candidates` on clip-grouped validation
    pairs of the training set (as in each fold of `fense_cross_validation`); `variants` are scored beside."""
    (train_pairs, train_refs), (test_pairs, test_refs) = train, test
    train_features = pair_features(train_pairs, encoder, references=train_refs, fluency=True)
    test_features = pair_features(test_pairs, encoder, references=test_refs, fluency=True)
    probability, chosen, select_nll = _choose_and_predict(train_pairs, train_features, test_features, candidates,
                                                          variants or {}, encoder, seed)
    return {**fense_scores(probability["default"], test_pairs), "chosen": chosen, "validation_nll": select_nll,
            "variants": {name: fense_scores(p, test_pairs) for name, p in probability.items() if name != "default"}}


def _choose_and_predict(train_pairs: list[PreferencePair], train_features: PairFeatures, test_features: PairFeatures,
                        candidates: Mapping[str, RewardConfig], variants: Mapping[str, RewardConfig],
                        encoder: TextEncoder, seed: int) -> tuple[dict[str, np.ndarray], str, dict[str, float]]:
    """Train every candidate and variant on `train_pairs` minus a clip-grouped validation share (their early
    stopping set), predict the test rows, and let the candidate with the lowest validation NLL be the default.
    Features carry the fluency columns; models without fluency features get them dropped."""
    if not candidates:
        raise PrefcapError("no candidate reward config to train")
    val_fraction = next(iter(candidates.values())).val_fraction
    select_clips = {p.clip_id for p in split_by_clip(train_pairs, val_fraction, seed=seed)[1]}
    select_rows = [k for k, p in enumerate(train_pairs) if p.clip_id in select_clips]
    probability, select_nll = {}, {}
    for name, config in {**candidates, **variants}.items():
        fit, score = (train_features.for_model(config.fluency_features),
                      test_features.for_model(config.fluency_features))
        model = train_reward(train_pairs, fit, replace(config, seed=seed), encoder.id, progress=False,
                             encoder=encoder, val_clips=select_clips)
        probability[name] = model.preference(score).numpy()
        if name in candidates:
            select_nll[name] = preference_metrics(model.preference(fit.select(select_rows)).numpy(),
                                                  [train_pairs[k] for k in select_rows])["nll"]
    chosen = min(select_nll, key=select_nll.get)
    probability["default"] = probability[chosen]
    return probability, chosen, select_nll


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


def fense_cross_validation(path: str | Path | tuple[list[PreferencePair], dict],
                           candidates: Mapping[str, RewardConfig], encoder: TextEncoder,
                           folds: int = 5, variants: Mapping[str, RewardConfig] | None = None, seed: int = 0,
                           progress: bool = True) -> dict:
    """Nested clip-grouped k-fold cross-validation: every pair is predicted by models that never saw its clip.

    In each outer fold a clip-grouped `val_fraction` (of the first candidate) of the training clips is set aside;
    every model trains on the other training clips and stops early on those. The default's prediction for the
    fold is the candidate with the lowest NLL on the set-aside clips: a design is chosen inside the training fold,
    never on the fold being scored. `variants` are other designs, trained and scored on the same splits. Returns
    the default's scores at the top level (FENSE's categories and total), each candidate's and variant's own
    under "variants", and each fold's figures (with the candidate it chose) under "folds"."""
    pairs, references = path if isinstance(path, tuple) else load_fense(path)  # a path, or `load_fense`'s result
    # a pair's features depend on its own clip only, so they are computed once for every fold
    features = pair_features(pairs, encoder, references=references, fluency=True)
    names = [*candidates, *(variants or {}), "default"]
    probability = {name: np.zeros(len(pairs)) for name in names}
    fold_rows = []
    for k, test_rows in enumerate(tqdm(clip_folds(pairs, folds, seed=seed), desc="FENSE folds", disable=not progress)):
        test_set = set(test_rows)
        train_rows = [i for i in range(len(pairs)) if i not in test_set]
        predicted, chosen, select_nll = _choose_and_predict(
            [pairs[i] for i in train_rows], features.select(train_rows), features.select(test_rows), candidates,
            variants or {}, encoder, seed + k)
        for name in names:
            probability[name][test_rows] = predicted[name]
        test_pairs = [pairs[i] for i in test_rows]
        fold_rows.append({"fold": k, "clips": len({p.clip_id for p in test_pairs}), "chosen": chosen,
                          "validation_nll": select_nll, **fense_scores(predicted["default"], test_pairs),
                          "variants": {name: fense_scores(predicted[name], test_pairs)["total"]
                                       for name in names if name != "default"}})
    return {**fense_scores(probability["default"], pairs), "folds": fold_rows,
            "variants": {name: fense_scores(probability[name], pairs) for name in names if name != "default"},
            "candidates": {name: asdict(config) for name, config in candidates.items()}, "seed": seed}


def fense_table(results: Mapping[str, dict]) -> str:
    """Variants side by side: FENSE's categories and the total, one row each."""
    columns = (*FENSE_CATEGORIES, "total")
    width = max(len(name) for name in results) + 2
    lines = [f"{'':<{width}}" + "".join(f"{c:>8}" for c in columns)]
    for name, scores in results.items():
        cells = ("n/a" if scores.get(c) is None else f"{scores[c]:.3f}" for c in columns)
        lines.append(f"{name:<{width}}" + "".join(f"{cell:>8}" for cell in cells))
    return "\n".join(lines)


def _write_json(path: Path, payload: dict) -> None:
    with atomic_write(path) as handle:
        json.dump(payload, handle, indent=2, default=float)
