import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prefcap.errors import PrefcapError
from prefcap.reward.data import PreferencePair, clip_folds, pairs_from_rows, preference_targets, split_by_clip
from prefcap.reward.features import PairFeatures, pair_features
from prefcap.reward.model import RewardConfig, RewardModel
from prefcap.reward.quality import expected_calibration_error, learning_curve, single_annotator_agreement
from prefcap.reward.train import bradley_terry_loss, train_reward

SMALL = RewardConfig(hidden=(16, 8), epochs=40, batch_size=32, learning_rate=3e-3, val_fraction=0.0, dropout=0.0)


def test_bradley_terry_loss_matches_a_hand_computed_value():
    loss = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.5]))
    first = math.log1p(math.exp(-1))  # -log σ(1)
    second = 0.5 * (math.log1p(math.exp(1)) + math.log1p(math.exp(-1)))  # a tie: -½ log σ(-1) - ½ log σ(1)
    assert loss.item() == pytest.approx((first + second) / 2, abs=1e-6)


def test_a_tie_is_a_half_target_never_a_win():
    tie, win, split = (PreferencePair("c", "x", "y", 0, 0, 3), PreferencePair("c", "x", "z", 3, 0, 0),
                       PreferencePair("c", "y", "z", 2, 1, 1))
    kept, soft = preference_targets([tie, win, split], "soft", "half")
    assert soft.tolist() == [0.5, 1.0, pytest.approx(2.5 / 4)]
    _, majority = preference_targets([tie, win, split], "majority", "half")
    assert majority.tolist() == [0.5, 1.0, 1.0]
    kept, dropped = preference_targets([tie, win, split], "majority", "drop")
    assert kept == [win, split] and dropped.tolist() == [1.0, 1.0]
    _, shares = preference_targets([tie, win, split], "soft", "drop")
    assert shares.tolist() == [1.0, pytest.approx(2 / 3)]
    # at equal rewards the loss of a tie is at its minimum: no gradient pushes either caption up
    margin = torch.zeros(1, requires_grad=True)
    bradley_terry_loss(margin, torch.zeros(1), torch.tensor([0.5])).backward()
    assert margin.grad.item() == pytest.approx(0.0)


def test_duplicates_in_either_order_are_merged_not_double_counted():
    def row(a, b, choice, annotator, origin="fense:MM_2"):
        return {"clip_id": "c1", "caption_a": a, "caption_b": b, "choice": choice, "annotator": annotator,
                "gold": None, "origin": origin}

    rows = [row("dog", "cat", "a", "p"), row("cat", "dog", "a", "q"), row("cat", "dog", "tie", "r"),
            row("dog", "cow", "b", "p", origin="random"), {**row("dog", "cat", "b", "s"), "gold": "a"}]
    first, second = pairs_from_rows(rows)
    assert (first.caption_a, first.votes_a, first.votes_b, first.votes_tie, first.category) == ("dog", 1, 1, 1, "MM")
    assert first.label == 0 and not first.unanimous
    assert (second.votes_b, second.category, second.label) == (1, None, -1)


def test_single_annotator_agreement_and_calibration_by_hand():
    # 3 votes for a and 1 for b: each a-vote agrees with the others' sign, the b-vote does not
    assert single_annotator_agreement([PreferencePair("c", "x", "y", 3, 1, 0)]) == pytest.approx(0.75)
    # 1 a, 1 b: each vote's others are a single opposite vote
    assert single_annotator_agreement([PreferencePair("c", "x", "y", 1, 1, 0)]) == 0.0
    probability = np.array([0.9, 0.9, 0.1, 0.1])
    assert expected_calibration_error(probability, np.array([1, 0, 0, 0.0])) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)


@settings(max_examples=40, deadline=None)
@given(clip_ids=st.lists(st.sampled_from([f"clip{k}" for k in range(12)]), min_size=6, max_size=60),
       seed=st.integers(0, 1000))
def test_a_clip_never_appears_in_two_splits(clip_ids, seed):
    pairs = [PreferencePair(c, f"a{k}", f"b{k}", 1, 0, 0) for k, c in enumerate(clip_ids)]
    if len(set(clip_ids)) < 5:
        return
    train, test = split_by_clip(pairs, 0.25, seed)
    assert train and test and not {p.clip_id for p in train} & {p.clip_id for p in test}
    assert len(train) + len(test) == len(pairs)
    folds = clip_folds(pairs, 5, seed)
    assert sorted(i for fold in folds for i in fold) == list(range(len(pairs)))
    owners = [{pairs[i].clip_id for i in fold} for fold in folds]
    assert all(not owners[i] & owners[j] for i in range(5) for j in range(i + 1, 5))


class ToyEncoder:
    """Events as fixed random directions: a caption names events, a clip's 'audio' is the sum of its events."""

    id = "toy-encoder"

    def __init__(self, n_events: int = 10, dim: int = 24, seed: int = 0):
        self.directions = torch.nn.functional.normalize(torch.randn(n_events, dim,
                                                                    generator=torch.Generator().manual_seed(seed)))

    def vector(self, events) -> torch.Tensor:
        v = self.directions[list(events)].sum(0)
        return v / v.norm()

    def embed_text(self, texts):
        return torch.stack([self.vector(int(w[1:]) for w in text.split()) for text in texts])


def toy_pairs(encoder: ToyEncoder, n: int, events: list[int], seed: int, per_clip: int = 2,
              votes: tuple[int, int] = (3, 0)):
    """Pairs of one correct and one hallucinating caption of clips of `per_clip` events drawn from `events`;
    by default the votes of noiseless annotators, so the correct caption is always preferred."""
    rng = np.random.default_rng(seed)
    pairs, audio = [], {}
    for k in range(n):
        present = sorted(rng.choice(events, per_clip, replace=False).tolist())
        absent = int(rng.choice([e for e in range(len(encoder.directions)) if e not in present]))
        clip_id = f"s{seed}-{k}"
        audio[clip_id] = encoder.vector(present)
        good, bad = " ".join(f"e{e}" for e in present), f"e{present[0]} e{absent}"
        pairs.append(PreferencePair(clip_id, good, bad, *votes, 0) if k % 2 else
                     PreferencePair(clip_id, bad, good, *votes[::-1], 0))
    return pairs, audio


@pytest.fixture(scope="module")
def toy():
    encoder = ToyEncoder()
    pairs, audio = toy_pairs(encoder, 300, events=list(range(6)), seed=1)
    features = pair_features(pairs, encoder, audio=audio)
    return encoder, pairs, features


def test_swapping_a_and_b_flips_the_probability(toy, one_thread):
    encoder, pairs, features = toy
    model = train_reward(pairs, features, SMALL, encoder.id, progress=False)
    p = model.preference(features)
    torch.testing.assert_close(model.preference(features.swapped()), 1 - p, atol=1e-6, rtol=0)
    labels = torch.tensor([pair.label for pair in pairs])
    assert ((p > 0.5) == (labels > 0)).float().mean() > 0.9  # it learns the toy preference


def test_the_ensemble_is_less_sure_off_its_training_distribution(toy, one_thread):
    encoder, pairs, features = toy
    model = train_reward(pairs, features, RewardConfig(**{**SMALL.__dict__, "ensemble": 5}), encoder.id,
                         progress=False)

    def spread(clips_and_captions):
        clip = torch.stack([c for c, _ in clips_and_captions])
        text = encoder.embed_text([t for _, t in clips_and_captions])
        return model.rewards(clip, text, torch.zeros(len(text), 0))[1].mean().item()

    seen = [(features.clip_a[k], pairs[k].caption_a) for k in range(100)]
    unseen_pairs, unseen_audio = toy_pairs(encoder, 100, events=list(range(4, 10)), seed=2)  # new combinations
    unseen = [(unseen_audio[p.clip_id], p.caption_a) for p in unseen_pairs]
    assert spread(unseen) > 1.5 * spread(seen)


def test_within_a_clip_the_ensemble_is_less_sure_off_its_training_distribution(one_thread):
    # trained on 2-event clips of events 0-5 with split votes (2 : 1, so margins stay bounded); each clip's
    # correct and hallucinating caption scored as one group
    encoder = ToyEncoder()
    pairs, audio = toy_pairs(encoder, 300, events=list(range(6)), seed=1, votes=(2, 1))
    model = train_reward(pairs, pair_features(pairs, encoder, audio=audio),
                         RewardConfig(**{**SMALL.__dict__, "ensemble": 5}), encoder.id, progress=False)

    def spread(scored: list[PreferencePair], clip_audio: dict) -> float:
        clip = torch.stack([clip_audio[p.clip_id] for p in scored]).repeat_interleave(2, dim=0)
        text = encoder.embed_text([caption for p in scored for caption in (p.caption_a, p.caption_b)])
        return model.rewards(clip, text, torch.zeros(len(text), 0), group_size=2)[1].mean().item()

    trained_on = spread(pairs[:100], audio)
    assert spread(*toy_pairs(encoder, 100, events=list(range(4, 10)), seed=2)) > 1.5 * trained_on  # new events
    assert spread(*toy_pairs(encoder, 100, events=list(range(6)), seed=3, per_clip=3)) > 1.5 * trained_on  # new layout


def test_group_relative_spread_ignores_a_head_s_free_constant():
    # two heads equal but for the output bias: they agree on every preference, so within a clip's group of
    # captions they are equally sure; only the raw spread sees the constant
    model = RewardModel.new(RewardConfig(hidden=(4,), ensemble=2, dropout=0.0), "toy", 3)
    model.heads[1].load_state_dict(model.heads[0].state_dict())
    with torch.no_grad():
        model.heads[1].mlp[-1].bias += 2.0
    clip, text, extra = torch.randn(6, 3), torch.randn(6, 3), torch.zeros(6, 0)
    mean, raw = model.rewards(clip, text, extra)
    torch.testing.assert_close(raw, torch.full((6,), 2.0 / math.sqrt(2)))
    mean_grouped, relative = model.rewards(clip, text, extra, group_size=3)
    torch.testing.assert_close(mean_grouped, mean)
    torch.testing.assert_close(relative, torch.zeros(6), atol=1e-6, rtol=0)
    with torch.no_grad():  # heads that rank captions differently: the spread of each head's group-centred rewards
        model.heads[1].mlp[-1].weight += 0.5
    relative = model.rewards(clip, text, extra, group_size=3)[1]
    members = model.member_rewards(clip, text, extra).reshape(2, 2, 3)
    expected = (members - members.mean(dim=2, keepdim=True)).std(dim=0).flatten()
    torch.testing.assert_close(relative, expected)
    assert relative.abs().sum() > 0
    with pytest.raises(PrefcapError, match="groups of 4"):
        model.rewards(clip, text, extra, group_size=4)


def test_a_model_refuses_embeddings_of_another_encoder(toy, tmp_path, one_thread):
    encoder, pairs, features = toy
    model = train_reward(pairs[:40], features.select(range(40)), SMALL, encoder.id, progress=False)
    model.save(tmp_path / "rm")
    loaded = RewardModel.load(tmp_path / "rm", encoder_id="toy-encoder")
    torch.testing.assert_close(loaded.preference(features), model.preference(features))
    assert json.loads((tmp_path / "rm" / "reward_config.json").read_text())["encoder_id"] == "toy-encoder"
    with pytest.raises(PrefcapError, match="trained on embeddings of 'toy-encoder'"):
        RewardModel.load(tmp_path / "rm", encoder_id="clap-laion--clap-htsat-unfused-0123456789")
    with pytest.raises(PrefcapError, match="not a reward model folder"):
        RewardModel.load(tmp_path)


def test_a_damaged_reward_config_is_refused_by_name(tmp_path):
    folder = tmp_path / "rm"
    RewardModel.new(RewardConfig(hidden=(4,)), "toy", 3).save(folder)
    (folder / "checksums.json").unlink()  # hand-edited: nothing records what the files were
    config = folder / "reward_config.json"
    saved = json.loads(config.read_text())
    for damaged in ("{not json", json.dumps({**saved, "config": {**saved["config"], "zzz": 1}}),
                    json.dumps({**saved, "dim": 5}), json.dumps({k: v for k, v in saved.items() if k != "config"})):
        config.write_text(damaged)
        with pytest.raises(PrefcapError, match=f"reward model {folder} could not be loaded"):
            RewardModel.load(folder)


def test_reference_mode_removes_the_judged_caption_from_its_clip(toy):
    encoder = toy[0]
    pair = PreferencePair("c", "e1 e2", "e3", 2, 0, 0)
    references = {"c": ["e1 e2", "e1", "e2 e4"]}
    features = pair_features([pair], encoder, references=references)
    expected_a = (encoder.embed_text(["e1"])[0] + encoder.embed_text(["e2 e4"])[0]) / 2
    torch.testing.assert_close(features.clip_a[0], expected_a / expected_a.norm())
    expected_b = encoder.embed_text(["e1 e2", "e1", "e2 e4"]).mean(0)
    torch.testing.assert_close(features.clip_b[0], expected_b / expected_b.norm())
    with pytest.raises(PrefcapError, match="no reference left"):
        pair_features([PreferencePair("d", "e1", "e2", 1, 0, 0)], encoder, references={"d": [" E1 "]})


def test_learning_curve_respects_budgets_and_grows_the_active_set(toy, one_thread):
    encoder, pairs, features = toy
    train, test = pairs[:200], pairs[200:]
    rows = PairFeatures(*(f[:200] for f in (features.clip_a, features.text_a, features.clip_b, features.text_b,
                                               features.extra_a, features.extra_b)))
    rest = features.select(range(200, 300))

    def trainer(subset, subset_features, config):
        return train_reward(subset, subset_features, config, encoder.id, progress=False)

    curve = learning_curve(train, rows, test, rest, SMALL, trainer, budgets=[25, 50, 400], ensemble=3, repeats=2)
    assert [(c["strategy"], c["pairs"]) for c in curve] == [("random", 25), ("random", 50), ("random", 200),
                                                            ("uncertain", 25), ("uncertain", 50), ("uncertain", 200)]
    assert all(len(c["runs"]) == 2 and c["accuracy"] == pytest.approx(np.mean(c["runs"])) for c in curve)
    assert curve[2]["accuracy"] > 0.9
