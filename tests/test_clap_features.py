"""CLAP's log-mel in torch (`ClapLogMel`) against transformers' numpy `ClapFeatureExtractor`, and the encoder's
embeddings through it against the old extractor path."""

import numpy as np
import pytest
import torch
from transformers import ClapFeatureExtractor

from prefcap.data.audio import chunk, resample
from prefcap.encoders.clap import ClapEncoder, ClapLogMel
from prefcap.encoders.train import EncoderTrainConfig, build_clap
from prefcap.errors import PrefcapError
from prefcap.tokenizer import train_tokenizer
from tiny_models import CLAP_TEXTS, save_tiny_clap

TOLERANCE_DB = 1e-3  # the extractor rounds its float64 log-mel to float32: ~1e-5 dB apart here

EXTRACTORS = {
    # laion/clap-htsat-unfused's preprocessor settings: 48 kHz, 10 s, n_fft 1024, hop 480, 64 slaney mels 50-14000 Hz
    "laion-unfused": lambda: ClapFeatureExtractor(frequency_min=50, frequency_max=14_000, truncation="rand_trunc"),
    "offline": lambda: build_clap(EncoderTrainConfig(), vocab_size=10)[1],  # 16 kHz, n_fft 1280 (not a power of 2)
    "tiny-test": lambda: ClapFeatureExtractor(feature_size=32, sampling_rate=16_000, hop_length=256, max_length_s=1,
                                              fft_window_size=512, frequency_max=8000),
}


def _signals(length: int, sr: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(length) / sr
    return {
        "noise": (0.1 * rng.standard_normal(length)).astype(np.float32),
        "tone": (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),  # deep valleys between its harmonics' bins
        "loud-chirp": (0.99 * np.sin(2 * np.pi * (100 + 2000 * t) * t)).astype(np.float32),
        "near-floor": (1e-6 * rng.standard_normal(length)).astype(np.float32),  # partly clipped at -100 dB
        "silence": np.zeros(length, np.float32),
        "short-noise": (0.1 * rng.standard_normal(length // 3 + 7)).astype(np.float32),  # repeatpad: 3 copies + zeros
        "one-sample": np.full(1, 0.5, np.float32),  # repeatpad to the full window by itself
    }


def _reference(extractor, windows, truncation: str) -> torch.Tensor:
    # max_length as an int: with max_length_s=5.0 (the offline CLAP's) the extractor's own nb_max_samples is a
    # float, which its repeatpad cannot pad by (prefcap's full-length windows never pad)
    return extractor(windows, sampling_rate=extractor.sampling_rate, return_tensors="pt", padding="repeatpad",
                     truncation=truncation, max_length=int(extractor.nb_max_samples))["input_features"]


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
@pytest.mark.parametrize("truncation", ["rand_trunc", "fusion"])
def test_torch_log_mel_equals_the_extractor(name, truncation):
    extractor = EXTRACTORS[name]()
    signals = _signals(int(extractor.nb_max_samples), extractor.sampling_rate)
    expected = _reference(extractor, list(signals.values()), truncation)
    got = ClapLogMel(extractor, truncation, group=3)(list(signals.values()))  # groups of 3: the split must not show
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert got.shape[1] == (4 if truncation == "fusion" else 1)
    for index, signal in enumerate(signals):
        difference = (got[index] - expected[index]).abs().max().item()
        assert difference < TOLERANCE_DB, f"{signal}: {difference} dB from the extractor"
    # the signals are not trivially alike: the comparison above can tell them apart
    assert (got[0] - got[1]).abs().max() > 10


def test_silence_is_the_floor_of_power_to_db():
    """power_to_db clips at 1e-10 (-100 dB); the extractor passes no top_db, so nothing is clipped from above."""
    extractor = EXTRACTORS["tiny-test"]()
    silence = ClapLogMel(extractor, "rand_trunc")([np.zeros(extractor.nb_max_samples, np.float32)])
    assert torch.equal(silence, torch.full_like(silence, -100.0))
    loud = ClapLogMel(extractor, "rand_trunc")([_signals(extractor.nb_max_samples, 16_000)["loud-chirp"]])
    assert loud.max() - loud.min() > 80  # no dynamic-range clip (top_db) applied


def test_a_window_longer_than_the_model_input_is_refused_not_cropped_at_random():
    extractor = EXTRACTORS["tiny-test"]()
    with pytest.raises(ValueError, match="longer than the model's"):
        ClapLogMel(extractor, "rand_trunc")([np.zeros(extractor.nb_max_samples + 1, np.float32)])
    with pytest.raises(PrefcapError, match="unknown CLAP truncation"):
        ClapLogMel(extractor, "pad")


@pytest.fixture(scope="module")
def tiny_hf_clap(tmp_path_factory) -> ClapEncoder:
    return ClapEncoder.from_pretrained(save_tiny_clap(tmp_path_factory.mktemp("clap")), device="cpu", batch_size=3)


def _old_audio_features(encoder: ClapEncoder, waveforms, sr: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What `ClapEncoder.audio_features` computed before the torch log-mel: the numpy extractor on the CPU."""
    windows, owners = [], []
    for index, waveform in enumerate(waveforms):
        for window in chunk(resample(waveform, sr, encoder.sample_rate), encoder.window):
            windows.append(window)
            owners.append(index)
    return _reference(encoder.feature_extractor, windows, encoder.truncation), torch.tensor(owners)


def _clips(sr: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(int(2.5 * sr)) / sr
    return [
        (0.1 * rng.standard_normal(int(0.4 * sr))).astype(np.float32),  # shorter than a window
        (0.1 * rng.standard_normal(sr)).astype(np.float32),  # exactly one window at 16 kHz
        (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32),  # 2.5 windows
        np.zeros(int(1.2 * sr), np.float32),  # silence over two windows
    ]


@pytest.mark.parametrize("sr", [16_000, 48_000, 22_050])
def test_encoder_features_and_embeddings_equal_the_extractor_path(tiny_hf_clap, sr):
    """Chunked, resampled (48 kHz and 22.05 kHz to the model's 16 kHz) and padded windows: same features, same
    embeddings as through the numpy extractor."""
    clips = _clips(sr)
    features, owners = tiny_hf_clap.audio_features(clips, sr)
    expected, expected_owners = _old_audio_features(tiny_hf_clap, clips, sr)
    assert owners.tolist() == expected_owners.tolist() == [0, 1, 2, 2, 2, 3, 3]
    assert features.device == tiny_hf_clap.device and owners.device == tiny_hf_clap.device
    assert features.shape == expected.shape
    assert (features - expected).abs().max().item() < TOLERANCE_DB

    embedded = tiny_hf_clap.embed_audio(clips, sr)
    with torch.no_grad():
        old = torch.cat([tiny_hf_clap.embed_features(*_old_audio_features(tiny_hf_clap, clips[i : i + 3], sr),
                                                     len(clips[i : i + 3])) for i in range(0, len(clips), 3)])
    assert embedded.shape == (4, 24) and embedded.device.type == "cpu"
    torch.testing.assert_close(embedded, old, atol=1e-5, rtol=0)
    assert (embedded[0] - embedded[1]).abs().max() > 1e-3  # different clips, different embeddings


def test_the_offline_clap_reads_the_same_features():
    """The small offline CLAP takes its input from the same `ClapEncoder.audio_features` (16 kHz, 5 s windows)."""
    config = EncoderTrainConfig(audio_channels=(8, 8, 8, 8), text_hidden=16, text_layers=1, projection_dim=8)
    model, extractor = build_clap(config, vocab_size=10)
    encoder = ClapEncoder(model, extractor, train_tokenizer(CLAP_TEXTS * 5, vocab_size=300), "offline", device="cpu")
    clips = [c[: int(16_000 * 4.5)] for c in _clips(16_000)]
    features, _ = encoder.audio_features(clips, 16_000)
    expected, _ = _old_audio_features(encoder, clips, 16_000)
    assert features.shape == expected.shape == (4, 1, 251, 64)
    assert (features - expected).abs().max().item() < TOLERANCE_DB
