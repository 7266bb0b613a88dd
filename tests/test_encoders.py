"""Audio–text encoders: the transformers CLAP path (tiny random ClapConfig, no network) and the offline CLAP."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import ClapFeatureExtractor

from prefcap.data.audio import load_audio
from prefcap.data.records import read_captions, read_clips
from prefcap.encoders.clap import ClapEncoder
from prefcap.encoders.offline_clap import OfflineClapConfig, OfflineClapModel
from prefcap.encoders.train import EncoderTrainConfig, positives, train_encoder
from prefcap.encoders.zero_shot import text_to_audio_recall
from prefcap.errors import PrefcapError
from prefcap.synth.corpus import SynthConfig, synthesize
from tiny_models import CLAP_TEXTS, save_tiny_clap

SR = 16_000
TEXTS = CLAP_TEXTS


@pytest.fixture(scope="module")
def tiny_hf_clap(tmp_path_factory) -> ClapEncoder:
    return ClapEncoder.from_pretrained(save_tiny_clap(tmp_path_factory.mktemp("clap")), device="cpu", batch_size=3)


def test_a_folder_that_is_not_a_clap_is_refused_by_name(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(PrefcapError, match=f"CLAP {tmp_path} could not be loaded"):
        ClapEncoder.from_pretrained(tmp_path)


def test_hf_clap_truncates_captions_longer_than_its_position_table(tiny_hf_clap):
    """A runaway RL sample must not index past RoBERTa's position table (the tiny tower has 32 positions)."""
    long, longer = " ".join(["a siren wails"] * 40), " ".join(["a siren wails"] * 80)
    embedded = tiny_hf_clap.embed_text([long, longer])
    assert torch.isfinite(embedded).all()
    torch.testing.assert_close(embedded[0], embedded[1])  # both cut to the same first 32 tokens


def _clips(n: int, seconds: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32) for _ in range(n)]


def test_hf_clap_embeddings_are_normalised_and_deterministic(tiny_hf_clap):
    audio = _clips(5, 0.8)
    batch = tiny_hf_clap.embed_audio(audio, SR)
    assert batch.shape == (5, 24)
    assert torch.allclose(batch.norm(dim=1), torch.ones(5), atol=1e-5)
    alone = torch.cat([tiny_hf_clap.embed_audio([a], SR) for a in audio])
    assert torch.allclose(batch, alone, atol=1e-5)
    assert torch.equal(tiny_hf_clap.embed_audio(audio, SR), batch)
    text = tiny_hf_clap.embed_text(TEXTS)
    assert text.shape == (4, 24) and torch.allclose(text.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(tiny_hf_clap.embed_text(TEXTS[:1]), text[:1], atol=1e-5)


def test_long_clips_are_the_mean_of_fixed_windows(tiny_hf_clap):
    long = _clips(1, 2.5, seed=1)[0]
    windows = [long[:SR], long[SR : 2 * SR], long[2 * SR :]]
    features, owners = tiny_hf_clap.audio_features([long], SR)
    assert owners.tolist() == [0, 0, 0]
    per_window = tiny_hf_clap.embed_audio(windows, SR)
    expected = F.normalize(per_window.mean(0, keepdim=True), dim=-1)
    assert torch.allclose(tiny_hf_clap.embed_audio([long], SR), expected, atol=1e-5)


def test_audio_at_another_rate_is_resampled(tiny_hf_clap):
    t = np.arange(SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    t48 = np.arange(48_000) / 48_000
    tone48 = (0.3 * np.sin(2 * np.pi * 440 * t48)).astype(np.float32)
    same = F.cosine_similarity(tiny_hf_clap.embed_audio([tone], SR), tiny_hf_clap.embed_audio([tone48], 48_000))
    wrong = F.cosine_similarity(tiny_hf_clap.embed_audio([tone], SR), tiny_hf_clap.embed_audio([tone48[:SR]], SR))
    assert same.item() > 0.999 and wrong.item() < same.item()


def test_encoder_id_names_model_and_preprocessing(tiny_hf_clap):
    other = ClapEncoder(tiny_hf_clap.model, ClapFeatureExtractor(**{**tiny_hf_clap.feature_extractor.to_dict(),
                                                                    "hop_length": 128}),
                        tiny_hf_clap.tokenizer, "tiny")
    assert tiny_hf_clap.id.startswith("clap-local-") and other.id != tiny_hf_clap.id


def test_multi_positive_loss_reduces_to_infonce_on_the_diagonal():
    torch.manual_seed(0)
    model = OfflineClapModel(OfflineClapConfig(vocab_size=50, n_mels=16, audio_channels=(8, 8, 8, 8), text_hidden=16,
                                               text_layers=1, text_heads=2, projection_dim=8)).eval()
    ids = torch.randint(5, 50, (4, 6))
    features = torch.randn(4, 1, 64, 16)
    out = model(ids, torch.ones_like(ids), features, return_loss=True)
    labels = torch.arange(4)
    expected = (F.cross_entropy(out.logits_per_text, labels) + F.cross_entropy(out.logits_per_text.T, labels)) / 2
    assert torch.allclose(out.loss, expected, atol=1e-5)
    # marking more true pairs can only lower the loss
    mask = torch.eye(4)
    mask[0, 1] = 1
    assert model(ids, torch.ones_like(ids), features, return_loss=True, positive_mask=mask).loss < out.loss


def test_event_head_adds_a_multi_label_loss():
    torch.manual_seed(0)
    model = OfflineClapModel(OfflineClapConfig(vocab_size=50, n_mels=16, audio_channels=(8, 8, 8, 8), text_hidden=16,
                                               text_layers=1, text_heads=2, projection_dim=8, event_classes=3)).eval()
    ids, features = torch.randint(5, 50, (4, 6)), torch.randn(4, 1, 64, 16)
    plain = model(ids, torch.ones_like(ids), features, return_loss=True).loss
    labels = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 1]]).float()
    with_events = model(ids, torch.ones_like(ids), features, return_loss=True, event_labels=labels).loss
    expected = F.binary_cross_entropy_with_logits(model.event_head(model.get_audio_features(features)), labels)
    assert torch.allclose(with_events - plain, expected, atol=1e-5)


def test_label_captions_are_positive_for_every_clip_that_has_those_events():
    mask = positives([frozenset({"siren", "rain"}), frozenset({"rain"}), None],
                     [None, frozenset({"rain"}), frozenset({"siren"})])
    assert mask.tolist() == [[1, 0, 0], [1, 1, 0], [1, 0, 1]]


def test_retrieval_recall():
    audio = F.normalize(torch.randn(20, 8), dim=-1)
    assert text_to_audio_recall(audio, audio)["r@1"] == 1.0
    shuffled = text_to_audio_recall(audio, audio.roll(1, 0), ks=(1, 20))
    assert shuffled["r@1"] < 0.2 and shuffled["r@20"] == 1.0


def test_offline_clap_trains_saves_and_loads(tmp_path):
    synthesize(tmp_path / "data", SynthConfig(n=48, domain="general", seed=0), progress=False)
    clips = read_clips(tmp_path / "data" / "clips.jsonl")
    captions = read_captions(tmp_path / "data" / "captions.jsonl")
    config = EncoderTrainConfig(epochs=4, batch_size=16, audio_channels=(16, 16, 16, 16), text_hidden=32,
                                text_layers=1, projection_dim=32, vocab_size=300)
    encoder = train_encoder(clips, captions, tmp_path / "encoder", config, progress=False)
    assert (tmp_path / "encoder" / "config.json").is_file() and encoder.dim == 32
    audio = encoder.embed_audio([load_audio(c.audio_path, SR) for c in clips[:4]], SR)
    assert audio.shape == (4, 32) and torch.allclose(audio.norm(dim=1), torch.ones(4), atol=1e-5)
    metrics = json.loads((tmp_path / "encoder" / "train_metrics.json").read_text())
    assert metrics["train_loss_last_epoch"] < metrics["train_loss_first_epoch"]
