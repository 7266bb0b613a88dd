import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from prefcap.data.audio import (
    BLOCK_FRAMES,
    AudioInfo,
    audio_info,
    chunk,
    load_audio,
    pad_or_trim,
    validate_many,
    write_rejected,
    write_wav,
)
from prefcap.errors import (
    EmptyAudioError,
    NonFiniteAudioError,
    SilentAudioError,
    TooLongAudioError,
    TooManyChannelsError,
    UnreadableAudioError,
)


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_load_formats(tmp_path: Path, suffix: str) -> None:
    sr = 16000
    x = sine(440, sr, 0.5)
    path = tmp_path / f"tone{suffix}"
    sf.write(path, x, sr)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    if suffix in (".wav", ".flac"):
        np.testing.assert_allclose(y, x, atol=1e-4)
    else:  # lossy: the length and pitch survive, not the samples
        assert abs(len(y) - len(x)) <= 0.05 * len(x)
        assert abs(peak_hz(y, sr) - 440) <= 4


def test_stereo_is_mixed_to_mono_by_mean(tmp_path: Path) -> None:
    sr = 8000
    left, right = sine(300, sr, 0.1, amp=0.6), sine(700, sr, 0.1, amp=0.2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), sr, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-7)


def test_resample_48k_to_16k_keeps_pitch_and_length(tmp_path: Path) -> None:
    path = tmp_path / "tone48k.wav"
    sf.write(path, sine(440, 48000, 1.0), 48000, subtype="FLOAT")
    y = load_audio(path, target_sr=16000)
    assert y.dtype == np.float32
    assert len(y) == 16000
    assert peak_hz(y, 16000) == pytest.approx(440, abs=1)
    assert np.abs(y[1000:-1000]).max() == pytest.approx(0.5, abs=0.01)


def test_same_rate_is_not_resampled(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    x = sine(440, 16000, 0.2)
    sf.write(path, x, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path, target_sr=16000), x)


def test_pad_or_trim() -> None:
    x = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(pad_or_trim(x, 3), [1, 2, 3])
    np.testing.assert_array_equal(pad_or_trim(x, 7), [1, 2, 3, 4, 5, 0, 0])
    np.testing.assert_array_equal(pad_or_trim(x, 5), x)
    batch = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_array_equal(pad_or_trim(batch, 4), [[1, 1, 1, 0], [1, 1, 1, 0]])
    assert pad_or_trim(batch, 2).shape == (2, 2)  # the last axis is the time axis


def test_chunk_covers_every_sample_and_pads_the_last_window() -> None:
    x = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(chunk(x, 4), [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 0, 0]])
    np.testing.assert_array_equal(chunk(x, 4, hop=3), [[1, 2, 3, 4], [4, 5, 6, 7], [7, 8, 9, 10]])
    assert chunk(x[:8], 4).shape == (2, 4)  # an exact fit adds no empty window
    np.testing.assert_array_equal(chunk(x[:3], 4), [[1, 2, 3, 0]])


@given(length=st.integers(0, 300), window=st.integers(1, 64), hop=st.integers(1, 64))
def test_chunk_windows_start_hop_apart_and_cover_the_signal(length: int, window: int, hop: int) -> None:
    x = np.arange(1, length + 1, dtype=np.float32)
    windows = chunk(x, window, hop)
    assert windows.shape[1] == window
    for i, frame in enumerate(windows):
        expected = x[i * hop : i * hop + window]
        np.testing.assert_array_equal(frame, np.pad(expected, (0, window - len(expected))))
    last_start = (len(windows) - 1) * hop
    assert last_start + window >= length  # every sample is in some window
    assert len(windows) == 1 or last_start < length - window + hop  # and no window is superfluous


def test_chunk_returns_an_independent_array() -> None:
    x = np.zeros(8, dtype=np.float32)
    windows = chunk(x, 4, hop=2)
    windows[0, 2] = 1.0
    assert x.max() == 0 and windows[1, 0] == 0


def _truncated_wav(path: Path) -> None:
    sf.write(path, sine(440, 8000, 1.0), 8000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_header(path: Path) -> None:
    sf.write(path, sine(440, 8000, 0.1), 8000)
    path.write_bytes(path.read_bytes()[:20])


def _truncated_flac(path: Path) -> None:
    noise = 0.3 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    sf.write(path, noise, 8000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4000))


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _zero_frames(path: Path) -> None:
    sf.write(path, np.zeros(0, dtype=np.float32), 8000)


def _nan(path: Path) -> None:
    x = sine(440, 8000, 0.1)
    x[100] = np.nan
    sf.write(path, x, 8000, subtype="FLOAT")


def _inf(path: Path) -> None:
    x = sine(440, 8000, 0.1)
    x[-1] = -np.inf
    sf.write(path, x, 8000, subtype="FLOAT")


def _all_zero(path: Path) -> None:
    sf.write(path, np.zeros(800, dtype=np.float32), 8000)


def _below_threshold(path: Path) -> None:
    sf.write(path, sine(440, 8000, 0.1, amp=1e-8), 8000, subtype="FLOAT")


def _nine_channels(path: Path) -> None:
    sf.write(path, np.tile(sine(440, 8000, 0.1)[:, None], (1, 9)), 8000)


def _one_second(path: Path) -> None:
    sf.write(path, sine(440, 8000, 1.0), 8000)


def _long_and_nan(path: Path) -> None:
    x = sine(440, 8000, 1.0)
    x[:] = np.nan
    sf.write(path, x, 8000, subtype="FLOAT")


BAD_FILES = [
    ("truncated.wav", _truncated_wav, {}, UnreadableAudioError),
    ("header_cut.wav", _truncated_header, {}, UnreadableAudioError),
    ("truncated.flac", _truncated_flac, {}, UnreadableAudioError),
    ("garbage.wav", _garbage, {}, UnreadableAudioError),
    ("empty.wav", _zero_bytes, {}, EmptyAudioError),
    ("no_frames.wav", _zero_frames, {}, EmptyAudioError),
    ("nan.wav", _nan, {}, NonFiniteAudioError),
    ("inf.wav", _inf, {}, NonFiniteAudioError),
    ("zeros.wav", _all_zero, {}, SilentAudioError),
    ("faint.wav", _below_threshold, {}, SilentAudioError),
    ("nine.wav", _nine_channels, {}, TooManyChannelsError),
    ("long.wav", _one_second, {"max_seconds": 0.5}, TooLongAudioError),
    # The length limit is read from the header: a too-long file is refused before its samples are decoded.
    ("long_nan.wav", _long_and_nan, {"max_seconds": 0.5}, TooLongAudioError),
]


@pytest.mark.parametrize(("name", "make", "limits", "error"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_files_raise_their_error_naming_the_file(tmp_path: Path, name, make, limits, error) -> None:
    path = tmp_path / name
    make(path)
    for check in (load_audio, audio_info):
        with pytest.raises(error) as raised:
            check(path, **limits)
        assert type(raised.value) is error
        assert raised.value.path == str(path)
        assert str(path) in str(raised.value)


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.wav"
    with pytest.raises(UnreadableAudioError, match="no such file") as raised:
        load_audio(path)
    assert str(path) in str(raised.value)


def test_channel_limit_is_a_parameter(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([sine(440, 8000, 0.1)] * 2, axis=1), 8000)
    assert load_audio(path).ndim == 1
    with pytest.raises(TooManyChannelsError):
        load_audio(path, max_channels=1)


def test_audio_info_streams_blocks_and_checks_all_of_them(tmp_path: Path) -> None:
    n = 2 * BLOCK_FRAMES + 1000
    late_signal = np.zeros(n, dtype=np.float32)
    late_signal[-500:] = 0.1  # silence in every block but the last is still not a silent file
    sf.write(tmp_path / "late.wav", late_signal, 8000, subtype="FLOAT")
    assert audio_info(tmp_path / "late.wav") == AudioInfo(tmp_path / "late.wav", n / 8000, 8000)

    late_nan = late_signal.copy()
    late_nan[n - 10] = np.nan
    sf.write(tmp_path / "late_nan.wav", late_nan, 8000, subtype="FLOAT")
    with pytest.raises(NonFiniteAudioError, match=f"frame {n - 10}"):
        audio_info(tmp_path / "late_nan.wav")


def test_write_wav_is_byte_deterministic_and_clips(tmp_path: Path) -> None:
    x = sine(440, 16000, 0.25, amp=0.9)
    x[10] = 1.7  # out of range: must clip to full scale, not wrap to negative
    write_wav(tmp_path / "a.wav", x, 16000)
    write_wav(tmp_path / "b.wav", x.astype(np.float64), 16000)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    info = sf.info(tmp_path / "a.wav")
    assert (info.format, info.subtype, info.samplerate) == ("WAV", "PCM_16", 16000)
    y, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    assert y[10] == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(np.delete(y, 10), np.delete(x, 10), atol=1 / 32768)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav"]  # no temporary files left


def test_write_wav_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NaN"):
        write_wav(tmp_path / "x.wav", np.array([0.0, np.nan]), 8000)
    assert not (tmp_path / "x.wav").exists()


def test_validate_many_and_write_rejected(tmp_path: Path) -> None:
    good = tmp_path / "good.flac"
    sf.write(good, sine(440, 8000, 0.5), 8000)
    _nan(tmp_path / "nan.wav")
    _zero_bytes(tmp_path / "café.wav")
    paths = [good, tmp_path / "nan.wav", tmp_path / "café.wav"]
    ok, rejected = validate_many(paths)
    assert ok == [AudioInfo(good, 0.5, 8000)]
    assert [(r["path"], r["reason"]) for r in rejected] == [
        (str(tmp_path / "nan.wav"), "non_finite"),
        (str(tmp_path / "café.wav"), "empty"),
    ]

    write_rejected(tmp_path / "out" / "rejected.jsonl", rejected)
    lines = (tmp_path / "out" / "rejected.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rejected
    assert list(json.loads(lines[0])) == ["path", "reason", "message"]
