"""Supervised training of a tiny audio-bart captioner on 40 synthetic clips."""

import json

import numpy as np
import pytest
from accelerate import Accelerator

from conftest import TINY_BART
from prefcap.captioners import sft
from prefcap.captioners.audio_bart import AudioBartCaptioner
from prefcap.captioners.load import load_captioner
from prefcap.captioners.sft import METRICS_FILE, SFTConfig, new_captioner, train_captioner
from prefcap.config import apply_overrides
from prefcap.data.audio import load_audio
from prefcap.data.records import read_captions, read_clips
from prefcap.errors import PrefcapError
from prefcap.synth.corpus import SynthConfig, synthesize

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(train clips, val clips, captions): 32 and 4 clips with 5 references each."""
    folder = tmp_path_factory.mktemp("source")
    synthesize(folder, SynthConfig(n=40, domain="source", seed=0), progress=False)
    clips, captions = read_clips(folder / "clips.jsonl"), read_captions(folder / "captions.jsonl")
    return [c for c in clips if c.split == "train"], [c for c in clips if c.split == "val"], captions


def tiny(corpus, **overrides) -> AudioBartCaptioner:
    return new_captioner((c.text for c in corpus[2]), vocab_size=400, **{**TINY_BART, **overrides})


def config(**overrides) -> SFTConfig:
    return SFTConfig(**{"batch_size": 8, "learning_rate": 1e-2, "eval_every": 10, **overrides})


def test_training_lowers_the_loss_and_saves_the_best_weights(corpus, tmp_path):
    train, val, captions = corpus
    assert (len(train), len(val)) == (32, 4)
    captioner = tiny(corpus)
    out = tmp_path / "captioner"
    metrics = train_captioner(captioner, train, captions, val, captions, out, config(max_steps=30, patience=None),
                              progress=False)
    # 30 steps is 1.5 epochs of 20 batches (32 clips x 5 references): max_steps counts optimizer steps.
    assert metrics["steps"] == len(metrics["train_loss"]) == 30 and not metrics["stopped_early"]
    assert np.mean(metrics["train_loss"][-5:]) < np.mean(metrics["train_loss"][:5]) - 1.0
    assert [step for step, _ in metrics["val_loss"]] == [10, 20, 30]
    assert (metrics["train_pairs"], metrics["val_pairs"]) == (160, 20)
    best_step, best_loss = min(metrics["val_loss"], key=lambda point: point[1])
    assert (metrics["best_step"], metrics["best_val_loss"]) == (best_step, best_loss)
    assert json.loads((out / METRICS_FILE).read_text())["best_step"] == best_step
    assert not list(tmp_path.glob(".*.tmp"))
    # What was saved (and is left in the captioner) is the best checkpoint: it scores that validation loss.
    loaded = load_captioner(out, device="cpu")
    assert isinstance(loaded, AudioBartCaptioner) and not captioner.model.training
    refs = {}
    for caption in captions:
        refs.setdefault(caption.clip_id, []).append(caption.text)
    pairs = [(load_audio(clip.audio_path), text) for clip in val for text in refs[clip.id]]
    for scored in (loaded, captioner):
        assert sft._validation_loss(scored, Accelerator(), pairs, 16000, 8) == pytest.approx(best_loss, abs=1e-5)


def test_an_epoch_is_every_clip_reference_pair(corpus, tmp_path):
    train, val, captions = corpus
    metrics = train_captioner(tiny(corpus), train, captions, val, captions, tmp_path / "c",
                              config(batch_size=48, num_train_epochs=2, eval_every=100), progress=False)
    assert metrics["steps"] == 8 and [step for step, _ in metrics["val_loss"]] == [8]  # 2 x ceil(160 / 48)


def test_early_stopping_keeps_the_best_step(corpus, tmp_path, monkeypatch):
    train, val, captions = corpus
    losses = iter([3.0, 2.0, 2.5, 1.0])
    monkeypatch.setattr(sft, "_validation_loss", lambda *args: next(losses))
    metrics = train_captioner(tiny(corpus), train, captions, val, captions, tmp_path / "c",
                              config(max_steps=40, eval_every=2, patience=1), progress=False)
    assert metrics["stopped_early"] and metrics["steps"] == 6
    assert (metrics["best_step"], metrics["best_val_loss"]) == (4, 2.0)


def test_an_absurd_learning_rate_stops_early(corpus, tmp_path):
    train, val, captions = corpus
    metrics = train_captioner(tiny(corpus), train, captions, val, captions, tmp_path / "c",
                              config(learning_rate=30.0, max_steps=40, eval_every=2, patience=1), progress=False)
    assert metrics["stopped_early"] and metrics["steps"] < 40


def test_clear_errors_before_training(corpus, tmp_path):
    train, val, captions = corpus
    with pytest.raises(PrefcapError, match="does not fit"):  # 5 s clips, a model that takes 1.28 s
        train_captioner(tiny(corpus, max_position_embeddings=16), train, captions, val, captions, tmp_path / "c",
                        config(max_steps=1), progress=False)
    with pytest.raises(PrefcapError, match="no validation clips"):
        train_captioner(tiny(corpus), train, captions, [], captions, tmp_path / "c", config(max_steps=1),
                        progress=False)
    with pytest.raises(PrefcapError, match="no teacher_forced_loss"):
        train_captioner(object(), train, captions, val, captions, tmp_path / "c", config(max_steps=1), progress=False)
    assert not (tmp_path / "c").exists()


def test_config_takes_command_line_overrides():
    assert apply_overrides(SFTConfig(), ["mixed_precision=bf16", "max_steps=7"]) == SFTConfig(mixed_precision="bf16",
                                                                                              max_steps=7)
    with pytest.raises(PrefcapError, match="mixed_precision"):
        apply_overrides(SFTConfig(), ["mixed_precision=fp8"])
