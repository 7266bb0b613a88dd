"""Choose the demo reward model's settings on validation data, never on its held-out 20 % or on `test`.

Each variant is the demo's reward config (`REWARD[size]`) with some fields overridden. It trains on the reward
model's training split of a finished `prefcap demo --until reward` run (the same split the demo uses) with the
same clip-grouped validation clips for early stopping, and is scored on those validation clips only: NLL of the
vote shares and accuracy, on all pairs and on the baseline's own caption pairs, plus its accuracy on each kind of
the adversarial suite made for the target `val` clips.

    python experiments/tune_reward_on_val.py runs/demo "text_learning_rate=3e-4" "fluency_features=true"
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from prefcap.config import apply_overrides
from prefcap.data.records import read_clips
from prefcap.demo import REWARD, adversarial_accuracy
from prefcap.encoders.clap import ClapEncoder
from prefcap.prefs.perturb import PERTURBATIONS
from prefcap.prefs.store import Store
from prefcap.reward.data import pairs_from_rows, split_by_clip
from prefcap.reward.features import pair_features
from prefcap.reward.jobs import audio_embeddings
from prefcap.reward.quality import evaluate_reward
from prefcap.reward.train import train_reward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("variants", nargs="*", help="space-separated key=value overrides per variant ('' = as is)")
    parser.add_argument("--size", default="demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = replace(REWARD[args.size], seed=args.seed)
    encoder = ClapEncoder.from_pretrained(args.run / "encoder", device="cpu")
    store = Store(args.run / "prefs" / "prefs.sqlite", create=False)
    pairs = pairs_from_rows(store.judgment_rows())
    train, _held_out = split_by_clip(pairs, 0.2, seed=args.seed)  # the demo's split: its held-out part is not read
    val_clips = {p.clip_id for p in split_by_clip(train, base.val_fraction, seed=args.seed)[1]}
    val = [p for p in train if p.clip_id in val_clips]
    own = [p for p in val if p.category not in PERTURBATIONS]
    audio = audio_embeddings(store, encoder, [p.clip_id for p in train], args.run / "cache", progress=False)
    val_target = [c for c in read_clips(args.run / "data" / "target" / "clips.jsonl") if c.split == "val"]
    results = {}
    for spec in args.variants or [""]:
        config = apply_overrides(base, spec.split())
        model = train_reward(train, pair_features(train, encoder, audio=audio, fluency=config.fluency_features),
                             config, encoder.id, progress=False, encoder=encoder, val_clips=val_clips)
        scores = {name: evaluate_reward(model, subset, pair_features(subset, encoder, audio=audio,
                                                                      fluency=config.fluency_features))
                  for name, subset in (("val", val), ("val_own_captions", own))}
        kinds = adversarial_accuracy({"m": model}, encoder, val_target, args.run / "cache", seed=args.seed)["m"]
        results[spec or "(as is)"] = {
            "val_nll": scores["val"]["nll"], "val_accuracy": scores["val"]["accuracy"],
            "val_own_captions_accuracy": scores["val_own_captions"]["accuracy"],
            "epochs": model.metrics["heads"][0]["epochs"], "adversarial_min": min(kinds.values()),
            "adversarial": kinds}
        row = results[spec or "(as is)"]
        print(f"{spec or '(as is)':<50} nll {row['val_nll']:.4f} acc {row['val_accuracy']:.3f} own "
              f"{row['val_own_captions_accuracy']:.3f} epochs {row['epochs']} adversarial min "
              f"{row['adversarial_min']:.2f}", flush=True)
    store.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
