"""What limits the demo's reward model: the same heads on the same split, given better inputs.

A diagnostic of the embedded default, not part of the method: it reads what only the synthetic world has —
the clip's exact scene and the simulated annotators' own parse of each caption — to ask how accurate the
reward head could be if the encoder told it everything. Rows (held-out pairwise accuracy, mean of
`--trainings` heads):

- embeddings: the frozen offline-CLAP embeddings plus our generic fluency features (what the demo uses);
- + annotators' fluency counts: the same, plus the parser's repetitions, cut-off ending, grammar faults, length;
- aligned scene / caption vectors: no embeddings; the clip is its true events and attribute values, the
  caption what it states, in the same 14 x 7 coordinates (an ideally aligned encoder), plus fluency features;
- the same + annotators' fluency counts.

    python experiments/reward_ceiling.py runs/demo --seed 0
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np
import torch

from prefcap.data.records import Clip
from prefcap.encoders.clap import ClapEncoder
from prefcap.prefs.store import Store
from prefcap.reward import features as reward_features
from prefcap.reward import model as reward_model
from prefcap.reward.data import PreferencePair, pairs_from_rows, split_by_clip
from prefcap.reward.features import PairFeatures, pair_features
from prefcap.reward.jobs import audio_embeddings
from prefcap.reward.model import RewardConfig
from prefcap.reward.quality import evaluate_reward
from prefcap.reward.train import train_reward
from prefcap.synth.judge import scene_of
from prefcap.synth.lexicon import ADJECTIVES, CLASS_NAMES
from prefcap.synth.parse import parse_caption

VALUES = [(attribute, value) for attribute, values in ADJECTIVES.items() for value in values]  # 6 columns


def scene_vector(clip: Clip) -> np.ndarray:
    """Per class: present (a background event 0.6), then +1 / -1 for each attribute value it has / lacks."""
    vector = np.zeros((len(CLASS_NAMES), 1 + len(VALUES)), dtype=np.float32)
    for event in scene_of(clip).events:
        row = vector[CLASS_NAMES.index(event.cls)]
        row[0] = 0.6 if event.background else 1.0
        for column, (attribute, value) in enumerate(VALUES, start=1):
            if attribute in event.attributes:
                row[column] = 1.0 if event.attributes[attribute] == value else -1.0
    return vector.ravel()


def caption_vector(text: str) -> np.ndarray:
    """Per class: named, then 1 for each attribute value the caption states for it."""
    parsed = parse_caption(text)
    vector = np.zeros((len(CLASS_NAMES), 1 + len(VALUES)), dtype=np.float32)
    for cls in parsed.classes & set(CLASS_NAMES):  # sources outside the classes have no coordinates
        row = vector[CLASS_NAMES.index(cls)]
        row[0] = 1.0
        for attribute, values in parsed.attributes_of(cls).items():
            for value in values:
                row[1 + VALUES.index((attribute, value))] = 1.0
    return vector.ravel()


def fluency_counts(text: str) -> np.ndarray:
    parsed = parse_caption(text)
    return np.array([min(parsed.repetitions, 3), parsed.truncated, parsed.grammar_issues, parsed.n_words / 10],
                    dtype=np.float32)


def rebuilt(base: PairFeatures, pairs: Sequence[PreferencePair], clips: dict[str, Clip], aligned: bool,
            counts: bool) -> PairFeatures:
    def rows(function: Callable[[str], np.ndarray], keys: list[str]) -> torch.Tensor:
        return torch.from_numpy(np.stack([function(k) for k in keys]))

    def side(clip: torch.Tensor, text: torch.Tensor, extra: torch.Tensor, captions: list[str]):
        if aligned:
            clip = rows(lambda c: scene_vector(clips[c]), [p.clip_id for p in pairs])
            text = rows(caption_vector, captions)
        if counts:
            extra = torch.cat([extra, rows(fluency_counts, captions)], dim=1)
        return clip, text, extra

    clip_a, text_a, extra_a = side(base.clip_a, base.text_a, base.extra_a, [p.caption_a for p in pairs])
    clip_b, text_b, extra_b = side(base.clip_b, base.text_b, base.extra_b, [p.caption_b for p in pairs])
    return PairFeatures(clip_a, text_a, clip_b, text_b, extra_a, extra_b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a demo run folder (encoder/, prefs/prefs.sqlite, cache/)")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (it picks the demo's split)")
    parser.add_argument("--trainings", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)

    encoder = ClapEncoder.from_pretrained(f"{args.run}/encoder", device="cpu")
    store = Store(f"{args.run}/prefs/prefs.sqlite", create=False)
    pairs = pairs_from_rows(store.judgment_rows())
    train, test = split_by_clip(pairs, 0.2, seed=args.seed)  # the demo's split
    audio = audio_embeddings(store, encoder, [p.clip_id for p in pairs], f"{args.run}/cache", progress=False)
    clips = {clip_id: store.clip(clip_id) for clip_id in {p.clip_id for p in pairs}}
    base_train = pair_features(train, encoder, audio=audio, fluency=True)
    base_test = pair_features(test, encoder, audio=audio, fluency=True)

    print(f"{args.run}: {len(train)} training pairs, {sum(p.label != 0 for p in test)} labelled held-out pairs")
    print(f"{'inputs':52s} {'mlp (paper)':>12s} {'interaction':>12s}")
    for name, aligned, counts in [("embeddings + fluency features", False, False),
                                  ("  + annotators' fluency counts", False, True),
                                  ("aligned scene / caption vectors + fluency features", True, False),
                                  ("  + annotators' fluency counts", True, True)]:
        features_train = rebuilt(base_train, train, clips, aligned, counts)
        features_test = rebuilt(base_test, test, clips, aligned, counts)
        # the head's width follows the extra columns (a diagnostic's patch; the library's heads are untouched)
        reward_model.N_FLUENCY = reward_features.N_FLUENCY + (4 if counts else 0)
        accuracy = {}
        for head in ("mlp", "interaction"):
            runs = []
            for k in range(args.trainings):
                config = RewardConfig(head=head, fluency_features=True, seed=args.seed + 10 * k)
                model = train_reward(train, features_train, config, encoder.id, progress=False)
                runs.append(evaluate_reward(model, test, features_test)["accuracy"])
            accuracy[head] = float(np.mean(runs))
        reward_model.N_FLUENCY = reward_features.N_FLUENCY
        print(f"{name:52s} {accuracy['mlp']:12.3f} {accuracy['interaction']:12.3f}", flush=True)


if __name__ == "__main__":
    main()
