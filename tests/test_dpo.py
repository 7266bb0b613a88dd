"""DPO: the loss by hand, and training that moves the policy towards the preferred captions of the store."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import TINY_BART
from prefcap.captioners.load import load_captioner
from prefcap.captioners.sft import new_captioner
from prefcap.data.records import Caption, read_captions, read_clips
from prefcap.errors import PrefcapError
from prefcap.prefs.imports import ImportedJudgment, import_judgments
from prefcap.prefs.store import NewPair, Store
from prefcap.rl.dpo import DPOConfig, dpo_loss, preferences_from_store, sequence_log_prob_pairs, train_dpo
from prefcap.synth.corpus import SynthConfig, synthesize

pytestmark = pytest.mark.usefixtures("one_thread")
GOOD, BAD = "a dog barks loudly", "rain falls and rain falls"


def test_dpo_loss_by_hand():
    chosen, rejected = torch.tensor([-2.0, -1.0]), torch.tensor([-3.0, -1.0])
    ref_chosen, ref_rejected = torch.tensor([-2.5, -1.0]), torch.tensor([-2.5, -2.0])
    loss, margin = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.5, label_smoothing=0.1)
    assert margin.tolist() == [1.0, -1.0]  # (0.5 - (-0.5)), (0 - 1)

    def log_sigmoid(x):
        return -math.log1p(math.exp(-x))

    expected = [-0.9 * log_sigmoid(0.5 * m) - 0.1 * log_sigmoid(-0.5 * m) for m in (1.0, -1.0)]
    assert loss.item() == pytest.approx(sum(expected) / 2, abs=1e-6)


@pytest.fixture(scope="module")
def store_and_captioner(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dpo")
    synthesize(folder / "data", SynthConfig(n=20, domain="target", seed=2), progress=False)
    clips = read_clips(folder / "data" / "clips.jsonl")
    captioner = new_captioner([c.text for c in read_captions(folder / "data" / "captions.jsonl")] + [GOOD, BAD],
                              vocab_size=300, **TINY_BART)
    captioner.save(folder / "baseline")
    store = Store(folder / "prefs.sqlite")
    rows = []
    for k, clip in enumerate(clips):
        # the good caption on either side; three votes for it, one against; one pair with no majority
        good_first = k % 2 == 0
        a, b = (GOOD, BAD) if good_first else (BAD, GOOD)
        pair = NewPair(clip, Caption(clip_id=clip.id, text=a, source="x"), Caption(clip_id=clip.id, text=b, source="y"))
        votes = ["a", "a", "a", "b"] if good_first else ["b", "b", "b", "a"]
        if k == 0:
            votes = ["a", "b"]
        rows += [ImportedJudgment(pair, choice, f"annotator-{n}") for n, choice in enumerate(votes)]
    import_judgments(store, rows, origin="test", clips=clips)
    return store, folder / "baseline"


def test_preferences_follow_the_vote_sum_and_skip_ties(store_and_captioner):
    store, captioner_dir = store_and_captioner
    pairs, examples = preferences_from_store(store, 16_000)
    assert len(examples) == 19  # 20 clips, one without a majority
    assert all(e.chosen == GOOD and e.rejected == BAD for e in examples)


def test_dpo_raises_the_preferred_captions_relative_margin(store_and_captioner, tmp_path):
    store, captioner_dir = store_and_captioner
    _, examples = preferences_from_store(store, 16_000)
    before = load_captioner(captioner_dir, device="cpu")
    with torch.no_grad():
        chosen, rejected = sequence_log_prob_pairs(before, examples)
    metrics = train_dpo(load_captioner(captioner_dir, device="cpu"), store, str(tmp_path / "dpo"),
                        DPOConfig(max_steps=20, batch_size=8, learning_rate=3e-3, eval_every=5, patience=None,
                                  val_fraction=0.2), progress=False)
    after = load_captioner(tmp_path / "dpo", device="cpu")
    with torch.no_grad():
        chosen_after, rejected_after = sequence_log_prob_pairs(after, examples)
    assert ((chosen_after - rejected_after) - (chosen - rejected)).mean() > 1.0
    assert metrics["validation"][-1]["val_accuracy"] == 1.0
    assert metrics["best_val_loss"] < metrics["validation"][0]["val_loss"]
    assert (tmp_path / "dpo" / "dpo_metrics.json").is_file()


def test_dpo_refuses_a_store_without_preferences(tmp_path):
    with pytest.raises(PrefcapError, match="no judged pair with a majority"):
        preferences_from_store(Store(tmp_path / "empty.sqlite"), 16_000)
