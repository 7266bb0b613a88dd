"""RL: the loss terms by hand, the advantages, the audio-only loader, learning, exact resume, and a SIGKILL."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_BART
from prefcap.captioners.base import Decoding
from prefcap.captioners.load import load_captioner
from prefcap.captioners.sft import new_captioner
from prefcap.data.records import Caption, read_captions, read_clips
from prefcap.errors import PrefcapError
from prefcap.reward.model import RewardConfig, RewardModel
from prefcap.rl import jobs
from prefcap.rl.data import AudioOnlyClip, load_rl_audio
from prefcap.rl.rewards import CaptionReward, RewardTerms, repeated_ngrams
from prefcap.rl.trainer import (
    RLConfig,
    advantages,
    batch_indices,
    kl_shaped_rewards,
    policy_loss,
    read_log,
    train_rl,
)
from prefcap.synth.corpus import SynthConfig, synthesize
from prefcap.text import diversity_stats

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("target")
    synthesize(folder, SynthConfig(n=24, domain="target", seed=1), progress=False)
    return folder


@pytest.fixture(scope="module")
def captioner_dir(corpus, tmp_path_factory) -> Path:
    captioner = new_captioner((c.text for c in read_captions(corpus / "captions.jsonl")), vocab_size=300, **TINY_BART)
    folder = tmp_path_factory.mktemp("captioner") / "baseline"
    captioner.save(folder)
    return folder


class LengthReward:
    """A stand-in reward with a known optimum: short captions (minus the number of words)."""

    def __init__(self):
        self.group_sizes: set[int] = set()  # how the trainer groups the captions it scores

    def __call__(self, audio, captions, no_eos, group_size=1, clip_ids=None):
        self.group_sizes.add(group_size)
        words = torch.tensor([float(len(c.split())) for c in captions])
        return -words - 5.0 * no_eos.float(), {"rm": -words}


class WordsReward(LengthReward):
    """The opposite optimum: more words (an untrained captioner's greedy captions start empty)."""

    def __call__(self, audio, captions, no_eos, group_size=1, clip_ids=None):
        total, terms = super().__call__(audio, captions, torch.zeros_like(no_eos), group_size, clip_ids)
        return -total, {"rm": -terms["rm"]}


def audio_only(corpus: Path, split: str | None = None) -> list[AudioOnlyClip]:
    clips = [c for c in read_clips(corpus / "clips.jsonl") if split is None or c.split == split]
    return load_rl_audio(clips, 16_000, progress=False)


def test_advantages_by_hand():
    rewards = torch.tensor([[1.0, 2.0, 6.0], [0.0, 0.0, 0.0]])
    rloo = advantages(rewards, "rloo", scale_rewards=False)
    assert torch.allclose(rloo[0], torch.tensor([1 - 4.0, 2 - 3.5, 6 - 1.5]))
    assert torch.equal(rloo[1], torch.zeros(3))
    grpo = advantages(rewards, "grpo")
    assert torch.allclose(grpo[0], (rewards[0] - 3) / (rewards[0].std() + 1e-4))
    assert torch.equal(grpo[1], torch.zeros(3))  # a group with equal rewards gives no gradient
    scst = advantages(rewards, "scst", greedy_rewards=torch.tensor([2.0, -1.0]), scale_rewards=False)
    assert torch.equal(scst, torch.tensor([[-1.0, 0.0, 4.0], [1.0, 1.0, 1.0]]))
    whitened = advantages(rewards, "rloo")
    assert torch.allclose(whitened.std(), torch.tensor(1.0), atol=1e-3)


def test_policy_loss_by_hand():
    log_probs = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]], requires_grad=True)
    sampled = torch.tensor([[-1.0, -1.5], [-0.5, 0.0]])
    entropy = torch.tensor([[1.0, 2.0], [0.5, 0.0]])
    advantage = torch.tensor([2.0, -1.0])
    weights = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # the last token is padding
    loss, stats = policy_loss(log_probs, sampled, entropy, advantage, weights, normaliser=3.0, epsilon=0.2,
                              entropy_coef=0.1)
    ratio_2 = math.exp(-0.5)  # token 2 of row 1: below 1 - ε, clipped to 0.8, min(0.607 * 2, 0.8 * 2) = 1.213
    per_token = [-2.0 - 0.1, -ratio_2 * 2 - 0.2, 1.0 - 0.05]
    assert loss.item() == pytest.approx(sum(per_token) / 3, abs=1e-6)
    assert stats["clip_fraction"] == pytest.approx(1 / 3)
    loss.backward()
    assert log_probs.grad[1, 1] == 0  # padding gets no gradient
    assert log_probs.grad[0, 0] < 0  # positive advantage: raising the token's log-prob lowers the loss


def test_ppo_clip_stops_the_gradient_once_the_ratio_left_the_trust_region():
    sampled = torch.zeros(1, 1)
    for log_ratio, expect_gradient in ((0.1, True), (0.5, False)):
        log_probs = torch.full((1, 1), log_ratio, requires_grad=True)
        loss, _ = policy_loss(log_probs, sampled, torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1), 1.0,
                              epsilon=0.2, entropy_coef=0.0)
        loss.backward()
        assert (log_probs.grad.abs().item() > 0) == expect_gradient


def test_kl_shaped_rewards_by_hand():
    rewards = torch.tensor([1.0, -2.0])
    sampled = torch.tensor([[-1.0, -1.5, -0.1], [-0.5, -3.0, 9.0]])
    reference = torch.tensor([[-1.2, -1.0, -0.3], [-0.5, -2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # row 2's last token is padding
    shaped, kl = kl_shaped_rewards(rewards, sampled, reference, mask, beta=0.5)
    assert torch.allclose(kl, torch.tensor([0.2 - 0.5 + 0.2, 0.0 - 1.0]))  # k1 per token, summed: may be < 0
    assert torch.allclose(shaped, rewards - 0.5 * kl)
    assert torch.equal(kl_shaped_rewards(rewards, sampled, reference, mask, beta=0.0)[0], rewards)


# The KL term's gradient, exactly. A sampled caption y contributes −ρ A(y) per token to the loss (ratio ρ = 1 at
# sampling), so the expected loss gradient is Σ_y π(y) ∇(loss of y) with π(y) held fixed: the score-function
# estimator in expectation. Enumerating every outcome computes that expectation exactly, through the trainer's
# own `kl_shaped_rewards` and `policy_loss`. With reward 0 the expectation must be β ∇ KL(π ‖ π_ref). No baseline
# is needed for that (A = shaped reward): a baseline that does not depend on the sample's own outcome — the scst
# greedy reward, RLOO's mean of the other samples — adds b · E[∇ log π] = 0, and the RLOO case is checked too by
# enumerating pairs of samples. (Whitening and GRPO's group std divide by a batch statistic, so their expectation
# is a rescaled one, not checked here.)
BETA = 0.3


def _expected_loss(outcomes, rows) -> torch.Tensor:
    """Σ over outcomes of π(outcome) (detached) × the trainer's loss for it; `rows(outcome)` gives
    (log π [rows, T], log π_ref [rows, T], mask [rows, T], probability of the outcome)."""
    total = torch.zeros((), dtype=torch.float64)
    for outcome in outcomes:
        log_probs, ref_log_probs, mask, probability = rows(outcome)
        n = log_probs.shape[0]
        sampled = log_probs.detach()
        shaped, _ = kl_shaped_rewards(torch.zeros(n, dtype=torch.float64), sampled, ref_log_probs, mask, BETA)
        advantage = shaped if n == 1 else advantages(shaped.view(1, n), "rloo", scale_rewards=False).view(-1)
        loss, _ = policy_loss(log_probs, sampled, torch.zeros_like(log_probs), advantage, mask, float(n),
                              epsilon=0.2, entropy_coef=0.0)
        total = total + probability.detach() * loss
    return total


def _old_k3_expected_loss(log_pi: torch.Tensor, log_ref: torch.Tensor) -> torch.Tensor:
    """LOSS_VERSION 1's KL term in expectation: β k3 added to the loss of each sampled token."""
    log_ratio = log_ref - log_pi
    return (log_pi.exp().detach() * BETA * (log_ratio.exp() - log_ratio - 1)).sum()


def test_the_kl_term_follows_the_gradient_of_kl_policy_to_reference_on_a_categorical():
    generator = torch.Generator().manual_seed(0)
    theta = torch.randn(5, generator=generator, dtype=torch.float64).mul(1.5).requires_grad_()
    log_ref = torch.log_softmax(torch.randn(5, generator=generator, dtype=torch.float64) * 1.5, dim=0)

    def log_pi():
        return torch.log_softmax(theta, dim=0)

    forward = BETA * torch.autograd.grad((log_pi().exp() * (log_pi() - log_ref)).sum(), theta)[0]
    reverse = BETA * torch.autograd.grad((log_ref.exp() * (log_ref - log_pi())).sum(), theta)[0]
    assert (forward - reverse).abs().max() > 0.05  # the two directions differ here: the test can tell them apart

    def one_sample(y):
        lp = log_pi()
        return lp[y].view(1, 1), log_ref[y].view(1, 1), torch.ones(1, 1, dtype=torch.float64), lp[y].exp()

    gradient = torch.autograd.grad(_expected_loss(range(5), one_sample), theta)[0]
    assert torch.allclose(gradient, forward, atol=1e-6)
    assert not torch.allclose(gradient, reverse, atol=1e-2)

    def two_samples(pair):  # RLOO over 2 samples of one clip: A_1 = r̃_1 − r̃_2, A_2 = r̃_2 − r̃_1
        lp = log_pi()
        ids = list(pair)
        return (lp[ids].view(2, 1), log_ref[ids].view(2, 1), torch.ones(2, 1, dtype=torch.float64),
                lp[ids].exp().prod())

    pairs = [(a, b) for a in range(5) for b in range(5)]
    assert torch.allclose(torch.autograd.grad(_expected_loss(pairs, two_samples), theta)[0], forward, atol=1e-6)
    # and the old k3 loss term, in expectation, followed the reverse KL: the bug this test guards against
    old = torch.autograd.grad(_old_k3_expected_loss(log_pi(), log_ref), theta)[0]
    assert torch.allclose(old, reverse, atol=1e-6)


def test_the_kl_term_gradient_is_exact_for_whole_sequences():
    """Two tokens, 3 choices each, the second's distribution depending on the first: the caption-level kl (a
    sum over its tokens) gives β ∇ KL(π ‖ π_ref) over the 9 sequences. A third, padded token checks the mask."""
    generator = torch.Generator().manual_seed(1)
    theta_1 = torch.randn(3, generator=generator, dtype=torch.float64).mul(1.5).requires_grad_()
    theta_2 = torch.randn(3, 3, generator=generator, dtype=torch.float64).mul(1.5).requires_grad_()
    ref_1 = torch.log_softmax(torch.randn(3, generator=generator, dtype=torch.float64) * 1.5, dim=0)
    ref_2 = torch.log_softmax(torch.randn(3, 3, generator=generator, dtype=torch.float64) * 1.5, dim=1)
    sequences = [(a, b) for a in range(3) for b in range(3)]

    def log_pi():
        return torch.log_softmax(theta_1, dim=0), torch.log_softmax(theta_2, dim=1)

    def sequence(y):
        lp_1, lp_2 = log_pi()
        a, b = y
        padding = torch.tensor([7.0], dtype=torch.float64)  # anything: masked out
        log_probs = torch.cat([lp_1[a].view(1), lp_2[a, b].view(1), padding]).view(1, 3)
        ref = torch.cat([ref_1[a].view(1), ref_2[a, b].view(1), -padding]).view(1, 3)
        return log_probs, ref, torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64), (lp_1[a] + lp_2[a, b]).exp()

    def sequence_log_probs():
        lp_1, lp_2 = log_pi()
        return (lp_1.unsqueeze(1) + lp_2).reshape(-1), (ref_1.unsqueeze(1) + ref_2).reshape(-1)

    lp, ref = sequence_log_probs()
    forward = [BETA * g for g in torch.autograd.grad((lp.exp() * (lp - ref)).sum(), (theta_1, theta_2))]
    lp, ref = sequence_log_probs()
    reverse = [BETA * g for g in torch.autograd.grad((ref.exp() * (ref - lp)).sum(), (theta_1, theta_2))]
    gradient = torch.autograd.grad(_expected_loss(sequences, sequence), (theta_1, theta_2))
    for got, want, wrong in zip(gradient, forward, reverse, strict=True):
        assert torch.allclose(got, want, atol=1e-6)
        assert not torch.allclose(got, wrong, atol=1e-2)


def test_batches_cover_every_clip_each_epoch_and_do_not_depend_on_the_start():
    seen = np.concatenate([batch_indices(step, 10, 5, seed=3) for step in (1, 2)])
    assert sorted(seen.tolist()) == list(range(10))
    assert batch_indices(7, 10, 4, seed=3).tolist() == batch_indices(7, 10, 4, seed=3).tolist()


def test_guards_penalise_repetition_bad_endings_and_length():
    assert repeated_ngrams("a dog barks and a dog barks", 2) == 2
    assert repeated_ngrams("a dog barks", 2) == 0
    assert repeated_ngrams("a piano plays with a piano in the background", 1) == 1  # named twice
    assert repeated_ngrams("a dog barks and a cat is heard", 1) == 0  # filler words may repeat

    class Encoder:
        id, dim, sample_rate = "toy", 4, 16_000

        def embed_text(self, texts):
            return torch.nn.functional.normalize(torch.ones(len(texts), 4), dim=-1)

    model = RewardModel.new(RewardConfig(hidden=(4,)), "toy", 4)
    reward = CaptionReward(model, Encoder(), RewardTerms(min_words=3, max_words=6, length_penalty=0.5))
    captions = ["a dog barks loudly", "a dog barks followed by", "a dog barks a dog barks", "dog", "a b c d e f g h"]
    total, terms = reward(torch.ones(5, 4) / 2, captions, torch.tensor([False, False, False, False, True]))
    assert terms["bad_ending"].tolist() == [0, 1, 0, 0, 1]
    assert terms["repeated_ngrams"].tolist() == [0, 0, 2, 0, 0]
    assert terms["words_out_of_bounds"].tolist() == [0, 0, 0, 2, 2]
    # the same caption embedding everywhere: every difference in the total comes from the guards
    assert torch.allclose(total - total[0], torch.tensor([0.0, -1.0, -2.0, -1.0, -2.0]))
    with pytest.raises(PrefcapError, match="trained on embeddings of"):
        CaptionReward(RewardModel.new(RewardConfig(hidden=(4,)), "other", 4), Encoder())


def test_the_clip_relative_term_removes_what_a_caption_earns_on_any_clip():
    """r(x, y) − λ mean_x' r(x', y): a caption the model likes everywhere gains nothing from it, and the term is the
    model's own mean over the other clips (each caption read once, scored against every other clip)."""
    torch.manual_seed(0)

    class Encoder:
        id, dim, sample_rate = "toy", 4, 16_000

        def embed_text(self, texts):
            return torch.stack([torch.randn(4, generator=torch.Generator().manual_seed(len(t))) for t in texts])

    model = RewardModel.new(RewardConfig(head="interaction", hidden=(8,), ensemble=2), "toy", 4)
    pool = torch.randn(40, 4)
    terms = RewardTerms(clip_relative_coef=0.5, clip_relative_clips=6, length_penalty=0.0, min_words=0)
    reward = CaptionReward(model, Encoder(), terms, clip_pool=pool)
    captions = ["a dog barks", "rain falls on a roof", "a bell rings twice"]
    audio = torch.randn(3, 4)
    total, parts = reward(audio, captions, torch.zeros(3, dtype=torch.bool))
    others = reward.other_clips
    assert others.shape == (6, 4) and all(any(torch.equal(o, row) for row in pool) for o in others)
    text = Encoder().embed_text(captions)
    slow = torch.stack([model.rewards(others, text[k].expand(6, 4), torch.zeros(6, 0))[0].mean() for k in range(3)])
    assert torch.allclose(parts["caption_prior"], slow, atol=1e-5)
    plain, plain_parts = CaptionReward(model, Encoder(), replace(terms, clip_relative_coef=0.0))(
        audio, captions, torch.zeros(3, dtype=torch.bool))
    assert torch.allclose(plain_parts["caption_prior"], torch.zeros(3)) and torch.allclose(parts["rm"],
                                                                                          plain_parts["rm"])
    assert torch.allclose(total, plain - 0.5 * slow, atol=1e-5)
    with pytest.raises(PrefcapError, match="clip_pool"):
        CaptionReward(model, Encoder(), terms)


def test_the_rl_loader_keeps_audio_and_ids_only(corpus):
    clips = audio_only(corpus)
    assert {f for f in AudioOnlyClip.__dataclass_fields__} == {"id", "waveform"}
    assert all(c.waveform.ndim == 1 and c.waveform.size for c in clips)
    with pytest.raises(PrefcapError, match="audio clips only"):
        load_rl_audio([Caption(clip_id="x", text="a dog barks", source="reference")], 16_000)


def test_run_rl_never_reads_captions(corpus, captioner_dir, tmp_path, monkeypatch):
    """RL on the corpus with every way to read captions or references booby-trapped."""
    def trap(*args, **kwargs):
        raise AssertionError("RL read captions")

    monkeypatch.setattr("prefcap.data.records.read_captions", trap)
    monkeypatch.setattr("prefcap.prefs.store.Store.references", trap)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "clips.jsonl").write_text((corpus / "clips.jsonl").read_text())  # no captions.jsonl beside
    for wav in corpus.glob("audio/*"):
        (tmp_path / "data" / "audio").mkdir(exist_ok=True)
        os.symlink(wav, tmp_path / "data" / "audio" / wav.name)
    monkeypatch.setattr(jobs, "CaptionReward", lambda model, encoder, config, clip_pool=None: LengthReward())
    monkeypatch.setattr(jobs.RewardModel, "load", lambda *a, **k: None)

    class Encoder:
        id, dim, sample_rate = "toy", 4, 16_000

        def embed_audio(self, waveforms, sr):
            return torch.ones(len(waveforms), 4) / 2

    metrics = jobs.run_rl(captioner_dir, tmp_path, Encoder(), tmp_path / "data" / "clips.jsonl", tmp_path / "rl",
                             RLConfig(max_steps=2, batch_size=2, num_generations=2, max_new_tokens=8),
                             split="rl", eval_split="val", eval_clips=2, progress=False)
    assert metrics["steps"] == 2
    assert (tmp_path / "rl" / "captioner").is_dir()


@pytest.mark.parametrize("algorithm,num_iterations", [("rloo", 1), ("grpo", 2)])
def test_rl_learns_a_simple_reward_and_logs_every_term(corpus, captioner_dir, tmp_path, algorithm, num_iterations):
    policy = load_captioner(captioner_dir, device="cpu")
    clips = audio_only(corpus, "rl")
    config = RLConfig(algorithm=algorithm, num_iterations=num_iterations, max_steps=30, batch_size=4,
                      num_generations=4, learning_rate=3e-3, beta=0.05, warmup_steps=0, max_new_tokens=12,
                      eval_every=15, save_steps=15, collapse_guard=False)  # shorter captions are the goal here
    reward = LengthReward()
    metrics = train_rl(policy, reward, clips, torch.zeros(len(clips), 4), tmp_path, config,
                       eval_clips=clips[:4], eval_embeddings=torch.zeros(4, 4), progress=False)
    assert reward.group_sizes == {4, 1}  # each clip's 4 samples together (group-relative spread); greedy eval alone
    log = read_log(tmp_path / "log.jsonl")
    train = [r for r in log if r["split"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 31))
    for key in ("reward", "reward_std", "reward_shaped", "kl_penalty", "kl_per_caption", "kl_per_token", "entropy",
                "mean_words", "distinct_2", "repetition_rate", "clip_fraction", "frac_reward_zero_std", "beta"):
        assert all(math.isfinite(r[key]) for r in train), key
    for r in train:  # `reward` is the unshaped mean; the KL penalty is folded in after it
        assert r["kl_penalty"] == pytest.approx(0.05 * r["kl_per_caption"], abs=1e-6)
        assert r["reward_shaped"] == pytest.approx(r["reward"] - r["kl_penalty"], abs=1e-5)
    assert np.mean([r["kl_per_caption"] for r in train[-5:]]) > 0  # the policy left the reference
    first, last = np.mean([r["reward"] for r in train[:5]]), np.mean([r["reward"] for r in train[-5:]])
    assert last > first + 1.0, (first, last)
    assert [r["step"] for r in metrics["heldout"]] == [0, 15, 30]
    assert sum(metrics["time_share"].values()) == pytest.approx(1.0)
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert load_captioner(tmp_path / "captioner", device="cpu").generate(
        [clips[0].waveform], 16_000).token_ids.shape[0] == 1


def greedy_texts(folder: Path, clips: list[AudioOnlyClip], max_new_tokens: int) -> list[str]:
    captioner = load_captioner(folder, device="cpu")
    decoding = Decoding(mode="greedy", max_new_tokens=max_new_tokens)
    return [t[0] for t in captioner.generate([c.waveform for c in clips], 16_000, 1, decoding).texts]


def test_the_collapse_guard_stops_and_keeps_the_last_sound_weights(corpus, captioner_dir, tmp_path):
    """A reward that pays for words moves the held-out length: the run stops at the first evaluation where it moved
    by more than max_length_change, and the saved captioner is the last sound evaluation's."""
    clips = audio_only(corpus, "rl")
    config = RLConfig(algorithm="grpo", max_steps=40, batch_size=4, num_generations=4, learning_rate=3e-3,
                      beta=0.05, warmup_steps=0, max_new_tokens=12, eval_every=2, save_steps=2,
                      max_length_change=0.15)
    metrics = train_rl(load_captioner(captioner_dir, device="cpu"), WordsReward(), clips,
                       torch.zeros(len(clips), 4), tmp_path, config, eval_clips=clips[:6],
                       eval_embeddings=torch.zeros(6, 4), progress=False)
    log = read_log(tmp_path / "log.jsonl")
    stopped = [r for r in log if r["split"] == "stopped"]
    assert len(stopped) == 1 and "words per caption" in stopped[0]["signs"][0], stopped
    assert metrics["steps"] == stopped[0]["step"] < 40 and metrics["collapse"] == stopped[0]["signs"]
    assert max(r["step"] for r in log) == metrics["steps"]  # nothing trained after the stop
    heldout = {r["step"]: r for r in log if r["split"] == "heldout"}
    kept = heldout[metrics["kept_step"]]
    assert metrics["kept_step"] < metrics["steps"]
    assert abs(kept["mean_words"] - heldout[0]["mean_words"]) <= 0.15 * max(1.0, heldout[0]["mean_words"])
    texts = greedy_texts(tmp_path / "captioner", clips[:6], 12)
    assert diversity_stats(texts)["mean_words"] == pytest.approx(kept["mean_words"])


def test_load_best_model_at_end_saves_the_best_heldout_evaluation(corpus, captioner_dir, tmp_path):
    clips = audio_only(corpus, "rl")
    config = RLConfig(algorithm="grpo", max_steps=12, batch_size=4, num_generations=4, learning_rate=3e-3,
                      beta=0.05, warmup_steps=0, max_new_tokens=12, eval_every=3, save_steps=3,
                      collapse_guard=False, load_best_model_at_end=True)
    metrics = train_rl(load_captioner(captioner_dir, device="cpu"), WordsReward(), clips, torch.zeros(len(clips), 4),
                       tmp_path, config, eval_clips=clips[:6], eval_embeddings=torch.zeros(6, 4), progress=False)
    heldout = [r for r in read_log(tmp_path / "log.jsonl") if r["split"] == "heldout"]
    best = max(heldout, key=lambda r: r["reward"])
    assert metrics["kept_step"] == best["step"] and metrics["steps"] == 12
    assert len({r["reward"] for r in heldout}) > 1  # the evaluations differ: the choice means something
    texts = greedy_texts(tmp_path / "captioner", clips[:6], 12)
    assert diversity_stats(texts)["mean_words"] == pytest.approx(best["mean_words"])


def test_the_kl_is_taken_to_the_reference_given(corpus, captioner_dir, tmp_path):
    """A later preference round continues from an RL policy and keeps the baseline as the KL anchor."""
    clips = audio_only(corpus, "rl")
    config = RLConfig(max_steps=1, batch_size=4, num_generations=2, max_new_tokens=8, warmup_steps=0)
    anchor = load_captioner(captioner_dir, device="cpu")
    with torch.no_grad():
        for parameter in anchor.model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    for name, reference in (("itself", None), ("anchor", anchor)):
        train_rl(load_captioner(captioner_dir, device="cpu"), LengthReward(), clips, torch.zeros(len(clips), 4),
                 tmp_path / name, config, reference=reference, progress=False)
    first = {name: read_log(tmp_path / name / "log.jsonl")[0]["kl_per_caption"] for name in ("itself", "anchor")}
    assert abs(first["itself"]) < 1e-5 and first["anchor"] > 0.01, first


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(corpus, captioner_dir, tmp_path):
    clips = audio_only(corpus, "rl")
    config = RLConfig(algorithm="grpo", max_steps=6, batch_size=2, num_generations=3, learning_rate=1e-3,
                      target_kl=0.5, num_iterations=2, max_new_tokens=8, save_steps=2, warmup_steps=2)
    embeddings = torch.zeros(len(clips), 4)

    def run(out, reward, resume=False):
        policy = load_captioner(captioner_dir, device="cpu")
        train_rl(policy, reward, clips, embeddings, out, config, resume=resume, progress=False)
        return policy.model.state_dict()

    straight = run(tmp_path / "straight", LengthReward())

    class Crash(LengthReward):
        calls = 0

        def __call__(self, *args, **kwargs):
            Crash.calls += 1
            if Crash.calls == 4:  # during step 4, after the checkpoint of step 2... and before that of step 4
                raise KeyboardInterrupt
            return super().__call__(*args, **kwargs)

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", Crash())
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == ["step-000002"]
    with pytest.raises(PrefcapError, match="--resume"):
        run(tmp_path / "resumed", LengthReward())
    resumed = run(tmp_path / "resumed", LengthReward(), resume=True)
    for name, tensor in straight.items():
        assert torch.equal(tensor, resumed[name]), name
    steps = [r["step"] for r in read_log(tmp_path / "resumed" / "log.jsonl")]
    assert steps == [r["step"] for r in read_log(tmp_path / "straight" / "log.jsonl")] == list(range(1, 7))
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == ["step-000004",
                                                                                       "step-000006"]


RL_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from test_rl import LengthReward, audio_only
from prefcap.captioners.base import Decoding
from prefcap.captioners.load import load_captioner
from prefcap.rl.trainer import RLConfig, train_rl
from pathlib import Path
corpus, captioner, out, steps = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
clips = audio_only(corpus, "rl")
policy = load_captioner(captioner, device="cpu")
config = RLConfig(max_steps=steps, batch_size=4, num_generations=2, learning_rate=1e-3, max_new_tokens=8, save_steps=2)
train_rl(policy, LengthReward(), clips, torch.zeros(len(clips), 4), out, config, resume="--resume" in sys.argv,
         progress=False)
import torch.distributed as dist
rank = dist.get_rank() if dist.is_initialized() else 0
flat = torch.cat([p.detach().reshape(-1) for p in policy.model.parameters()])
(out / f"weights-{rank}.txt").write_text(repr(flat.double().sum().item()) + " " + repr(flat.abs().sum().item()))
"""


def test_two_gloo_processes_stay_in_sync(corpus, captioner_dir, tmp_path):
    script = tmp_path / "rl_script.py"
    script.write_text(RL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                    str(script), str(corpus), str(captioner_dir), str(tmp_path / "out"), "4"],
                   check=True, env=env, timeout=300, capture_output=True)
    weights = [(tmp_path / "out" / f"weights-{rank}.txt").read_text() for rank in (0, 1)]
    assert weights[0] == weights[1]
    start = load_captioner(captioner_dir, device="cpu").model
    assert weights[0].split()[0] != repr(torch.cat([p.reshape(-1) for p in start.parameters()]).double().sum().item())
    assert json.loads((tmp_path / "out" / "rl_metrics.json").read_text())["processes"] == 2


def test_a_run_sigkilled_five_times_at_random_points_resumes_to_a_valid_model(corpus, captioner_dir, tmp_path):
    """Kills land anywhere: mid-step, mid-log line, mid-checkpoint (saves are every 2 steps); each rerun with
    --resume continues from the newest complete checkpoint and the log is cut back to it."""
    script = tmp_path / "rl_script.py"
    script.write_text(RL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "OMP_NUM_THREADS": "1"}
    out, steps = tmp_path / "out", 30
    command = [sys.executable, str(script), str(corpus), str(captioner_dir), str(out), str(steps)]
    rng = np.random.default_rng(7)
    kill_after = sorted(rng.choice(np.arange(2, steps - 2), size=5, replace=False))  # logged steps before a kill
    for kill, target in enumerate(kill_after):
        process = subprocess.Popen(command + (["--resume"] if kill else []), env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not ((out / "log.jsonl").exists() and len((out / "log.jsonl").read_bytes().splitlines()) >= target):
            assert process.poll() is None and time.monotonic() < deadline, f"run {kill} ended before step {target}"
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0, 0.3)))
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert not (out / "captioner").exists()
    subprocess.run([*command, "--resume"], env=env, check=True, timeout=300, capture_output=True)
    assert [r["step"] for r in read_log(out / "log.jsonl")] == list(range(1, steps + 1))
    metrics = json.loads((out / "rl_metrics.json").read_text())
    assert metrics["resumed_from"] >= kill_after[-1] - 2 and metrics["steps"] == steps
    assert load_captioner(out / "captioner", device="cpu") is not None
    assert len(list((out / "checkpoints").iterdir())) <= 2  # save_total_limit, no half-written leftovers
