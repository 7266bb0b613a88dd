"""The demo's reward-model stages: round 1's model with the paper's head and the variants beside it on the same
split, and each later round's model."""


from __future__ import annotations

import json
from pathlib import Path

from prefcap.data.records import Clip, read_captions, read_clips, references_by_clip
from prefcap.demo.rounds import pair_key, round_dir
from prefcap.encoders.clap import ClapEncoder
from prefcap.prefs.perturb import PERTURBATIONS
from prefcap.prefs.store import Store
from prefcap.reward.data import pairs_from_rows, split_by_clip
from prefcap.reward.features import pair_features
from prefcap.reward.jobs import audio_embeddings, train_from_store
from prefcap.reward.model import RewardConfig, RewardModel
from prefcap.reward.quality import preference_metrics
from prefcap.reward.train import train_reward
from prefcap.reward.variants import UNCERTAINTY_ENSEMBLE, adversarial_accuracy, ensemble_uncertainty, variant_slug
from prefcap.synth import panels
from prefcap.synth.independence import (
    panel_accuracy,
)


def train_demo_reward(out: Path, tmp: Path, config: RewardConfig, variants: dict[str, RewardConfig],
                      diagnostics: bool, progress: bool, device: str) -> None:
    """The reward model RL uses, on the simulated judgments of the `prefs` clips (a fixed clip-grouped 20 % held
    out), and the variants on the same split: held-out metrics of each on all held-out pairs and on the pairs of
    the baseline's own captions, the training panel's noise-free ceiling on both, and each model's accuracy on
    every kind of the adversarial suite (careful caption vs adversarial caption, held-out target test clips)."""
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    store = Store(out / "prefs" / "prefs.sqlite", create=False)
    cache = out / "cache"
    metrics = train_from_store(store, encoder, tmp, config, cache_root=cache, curve=diagnostics, progress=progress)
    pairs = pairs_from_rows(store.judgment_rows())
    train, test = split_by_clip(pairs, 0.2, seed=config.seed)  # the split train_from_store used
    sampled_rows = [k for k, p in enumerate(test) if p.category not in PERTURBATIONS]  # own captions, no contrast
    sampled = [test[k] for k in sampled_rows]
    audio = audio_embeddings(store, encoder, [p.clip_id for p in pairs], cache, progress)
    models = {"default": RewardModel.load(tmp, encoder=encoder)}
    train_features = pair_features(train, encoder, audio=audio, fluency=True)
    for name, variant in variants.items():
        models[name] = train_reward(train, train_features.for_model(variant.fluency_features), variant, encoder.id,
                                    progress=False, encoder=encoder)
        models[name].save(tmp / "variants" / variant_slug(name))  # for `make bench` and a second look
    test_features = pair_features(test, encoder, audio=audio, fluency=True)  # one pass serves every model
    heldout, heldout_sampled = {}, {}
    for name, model in models.items():
        probability = model.preference(test_features.for_model(model.config.fluency_features)).numpy()
        plot = tmp / f"reliability-{variant_slug(name)}.png" if name in variants else None
        heldout[name] = preference_metrics(probability, test, plot=plot)
        heldout_sampled[name] = preference_metrics(probability[sampled_rows], sampled)
    test_clips = [c for c in read_clips(out / "data" / "target" / "clips.jsonl") if c.split == "test"]
    adversarial = adversarial_accuracy(models, encoder, test_clips, cache, seed=config.seed)
    ceiling = {}
    for name, subset in (("all", test), ("sampled", sampled)):
        labelled = [p for p in subset if p.label != 0]
        ceiling[name] = panel_accuracy(panels.build("train", config.seed),
                                       [(store.clip(p.clip_id), p.caption_a, p.caption_b) for p in labelled],
                                       [p.label for p in labelled])
    uncertainty = None
    if UNCERTAINTY_ENSEMBLE in models:
        trained_on = [store.clip(clip_id) for clip_id in sorted({p.clip_id for p in train})]
        uncertainty = ensemble_uncertainty(models[UNCERTAINTY_ENSEMBLE], encoder, trained_on,
                                           *_test_clips_and_references(out), cache_root=cache)
    store.close()
    (tmp / "demo_metrics.json").write_text(json.dumps(
        {**metrics, "judge_ceiling": ceiling["all"], "judge_ceiling_sampled": ceiling["sampled"],
         "heldout_sampled": heldout_sampled["default"],
         "variants": {name: heldout[name] for name in variants},
         "variants_sampled": {name: heldout_sampled[name] for name in variants},
         "adversarial": adversarial, "ensemble_uncertainty": uncertainty}, indent=2, default=float))


def train_round_reward(out: Path, tmp: Path, r: int, config: RewardConfig, progress: bool, device: str) -> None:
    """Round r's reward model, trained on every judgment so far (the clip-grouped split of round 1, since the
    clips are the same), and how well it and round r − 1's model order the round's new pairs on held-out clips:
    what the update taught about the policy's own captions."""
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    store = Store(round_dir(out, r) / "prefs" / "prefs.sqlite", create=False)
    metrics = train_from_store(store, encoder, tmp, config, cache_root=out / "cache", progress=progress)
    previous = Store(round_dir(out, r - 1) / "prefs" / "prefs.sqlite", create=False)
    seen = {pair_key(p) for p in pairs_from_rows(previous.judgment_rows())}
    previous.close()
    held_out = (set(json.loads((tmp / "split.json").read_text())["test_clips"])
                & set(json.loads((round_dir(out, r - 1) / "reward" / "split.json").read_text())["test_clips"]))
    new = [p for p in pairs_from_rows(store.judgment_rows()) if pair_key(p) not in seen and p.clip_id in held_out]
    accuracy = {"before": None, "after": None}  # None: no new pair fell on a held-out clip
    if new:
        audio = audio_embeddings(store, encoder, [p.clip_id for p in new], out / "cache", progress=False)
        features = pair_features(new, encoder, audio=audio, fluency=True)
        for when, folder in (("before", round_dir(out, r - 1) / "reward"), ("after", tmp)):
            model = RewardModel.load(folder, encoder=encoder)
            probability = model.preference(features.for_model(model.config.fluency_features)).numpy()
            accuracy[when] = preference_metrics(probability, new)["accuracy"]
    store.close()
    (tmp / "round.json").write_text(json.dumps(
        {"round": r, "train_pairs": metrics["train_pairs"], "heldout_accuracy_all": metrics["heldout"]["accuracy"],
         "new_heldout_pairs": len(new), "new_heldout_accuracy_before": accuracy["before"],
         "new_heldout_accuracy_after": accuracy["after"]}, indent=2))




def _test_clips_and_references(out: Path) -> tuple[dict[str, list[Clip]], dict[str, list[str]]]:
    """The target and source test clips, and every clip's references (target's first), for ensemble_uncertainty."""
    references: dict[str, list[str]] = {}
    clips: dict[str, list[Clip]] = {}
    for domain in ("target", "source"):
        references.update(references_by_clip(read_captions(out / "data" / domain / "captions.jsonl"), source=None))
        clips[domain] = [c for c in read_clips(out / "data" / domain / "clips.jsonl") if c.split == "test"]
    return clips, references
