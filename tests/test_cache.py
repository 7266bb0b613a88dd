import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from prefcap.data.audio import load_audio, pad_or_trim
from prefcap.data.records import Clip
from prefcap.encoders.base import AudioTextEncoder
from prefcap.encoders.cache import CorruptShardWarning, EmbeddingCache, cache_folder
from prefcap.errors import PrefcapError

SR = 8000


class CountingEncoder(AudioTextEncoder):
    """Deterministic per clip (a fixed projection of the first 64 samples); counts the work it is given."""

    dim = 8
    sample_rate = SR

    def __init__(self, id: str = "fake-v1", fail_on_call: int | None = None) -> None:
        self.id = id
        self.calls = 0
        self.encoded = 0
        self.fail_on_call = fail_on_call
        self.projection = np.random.default_rng(0).standard_normal((64, self.dim)).astype(np.float32)

    def embed_audio(self, waveforms: Sequence[np.ndarray], sr: int) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("encoder crashed")
        self.encoded += len(waveforms)
        rows = [pad_or_trim(np.asarray(w, dtype=np.float32), 64) @ self.projection for w in waveforms]
        return torch.from_numpy(np.stack([row / np.linalg.norm(row) for row in rows]))  # row by row: batch-invariant

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError


def write_clip(folder: Path, clip_id: str, seed: int, name: str | None = None) -> Clip:
    path = folder / f"{name or clip_id}.wav"
    sf.write(path, np.random.default_rng(seed).uniform(-0.5, 0.5, 400), SR, subtype="PCM_16")
    return Clip(id=clip_id, audio_path=str(path))


@pytest.fixture
def clips(tmp_path: Path) -> list[Clip]:
    (tmp_path / "audio").mkdir()
    return [write_clip(tmp_path / "audio", f"c{k}", seed=k) for k in range(6)]


def direct(encoder: AudioTextEncoder, clips: Sequence[Clip]) -> torch.Tensor:
    return torch.cat([encoder.embed_audio([load_audio(c.audio_path, SR)], SR) for c in clips])


def shard_files(cache: EmbeddingCache) -> list[Path]:
    return sorted(cache.folder.glob("shard-*.safetensors"))


def test_second_pass_does_no_encoder_work(tmp_path: Path, clips: list[Clip]) -> None:
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache", encoder)
    first = cache.embed_clips(clips, batch_size=4, progress=False)
    assert first.shape == (6, 8) and first.dtype == torch.float32
    assert (cache.hits, cache.misses, encoder.calls, encoder.encoded) == (0, 6, 2, 6)
    assert cache.folder == tmp_path / "cache" / "emb-fake-v1" and len(shard_files(cache)) == 1

    again = cache.embed_clips(clips, progress=False)
    reopened = EmbeddingCache(tmp_path / "cache", encoder)
    from_disk = reopened.embed_clips(clips, progress=False)
    assert encoder.calls == 2
    assert (cache.hits, cache.misses, reopened.hits, reopened.misses) == (6, 6, 6, 0)
    assert torch.equal(first, again) and torch.equal(first, from_disk)
    assert torch.equal(first, direct(CountingEncoder(), clips))
    assert len(shard_files(cache)) == 1  # a call with no misses writes nothing


def test_same_audio_under_two_clip_ids_embeds_once(tmp_path: Path) -> None:
    original = write_clip(tmp_path, "a", seed=1)
    copy = Clip(id="b", audio_path=str(tmp_path / "copy.wav"))
    Path(copy.audio_path).write_bytes(Path(original.audio_path).read_bytes())
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache", encoder)
    out = cache.embed_clips([original, copy], progress=False)
    assert (cache.hits, cache.misses, encoder.encoded) == (1, 1, 1)
    assert torch.equal(out[0], out[1])

    third = Clip(id="c", audio_path=str(tmp_path / "third.wav"))
    Path(third.audio_path).write_bytes(Path(original.audio_path).read_bytes())
    assert torch.equal(cache.embed_clips([third], progress=False)[0], out[0])
    assert encoder.encoded == 1


def test_changed_audio_misses(tmp_path: Path) -> None:
    clip = write_clip(tmp_path, "a", seed=1)
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache", encoder)
    before = cache.embed_clips([clip], progress=False)
    write_clip(tmp_path, "a", seed=2)  # same path and clip id, new content
    after = cache.embed_clips([clip], progress=False)
    assert (cache.hits, cache.misses, encoder.encoded) == (0, 2, 2)
    assert not torch.equal(before, after)
    assert torch.equal(after, direct(encoder, [clip]))


def test_encoder_id_selects_the_folder(tmp_path: Path, clips: list[Clip]) -> None:
    first, second = CountingEncoder("fake-v1"), CountingEncoder("fake-v2")
    EmbeddingCache(tmp_path, first).embed_clips(clips, progress=False)
    other = EmbeddingCache(tmp_path, second)
    assert len(other) == 0
    other.embed_clips(clips, progress=False)
    assert (other.misses, second.encoded) == (6, 6)
    assert sorted(p.name for p in tmp_path.glob("emb-*")) == ["emb-fake-v1", "emb-fake-v2"]
    # ids that are not file-name safe stay distinct and stay one folder deep
    unsafe = [cache_folder(tmp_path, name) for name in ("laion/clap", "laion_clap", "laion:clap")]
    assert len(set(unsafe)) == 3 and all(p.parent == tmp_path for p in unsafe)


def test_rows_follow_clip_order_with_mixed_hits_and_misses(tmp_path: Path, clips: list[Clip]) -> None:
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache", encoder)
    cache.embed_clips(clips[::2], progress=False)
    order = [clips[k] for k in (5, 0, 3, 2, 1, 4, 0)]
    out = cache.embed_clips(order, batch_size=2, progress=False)
    assert (cache.hits, cache.misses) == (3 + 1, 3 + 3)  # the repeated clip 0 is a hit too
    assert torch.equal(out, direct(encoder, order))


def flip(data: bytearray, at: int) -> None:
    data[at] ^= 0xFF


def header_end(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data[:-1],
        lambda data: b"",
        lambda data: [flip(data, header_end(data) + 5), data][1],  # an embedding byte
        lambda data: [flip(data, len(data) - 1), data][1],  # a key byte
        lambda data: [flip(data, 30), data][1],  # the JSON header
    ],
    ids=["truncated-half", "truncated-1-byte", "empty", "flipped-embedding", "flipped-key", "flipped-header"],
)
def test_damaged_shard_is_set_aside_and_recomputed(tmp_path: Path, clips: list[Clip], damage) -> None:
    encoder = CountingEncoder()
    good = EmbeddingCache(tmp_path / "cache", encoder).embed_clips(clips, progress=False)
    (shard,) = shard_files(EmbeddingCache(tmp_path / "cache", encoder))
    shard.write_bytes(bytes(damage(bytearray(shard.read_bytes()))))

    with pytest.warns(CorruptShardWarning, match=shard.name):
        cache = EmbeddingCache(tmp_path / "cache", encoder)
    assert len(cache) == 0 and shard.with_name(shard.name + ".corrupt").is_file()
    assert torch.equal(cache.embed_clips(clips, progress=False), good)
    assert cache.misses == 6 and encoder.encoded == 12

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the damaged shard was set aside: no second warning
        healed = EmbeddingCache(tmp_path / "cache", encoder)
    assert torch.equal(healed.embed_clips(clips, progress=False), good) and healed.hits == 6


def test_leftover_temp_file_is_ignored(tmp_path: Path, clips: list[Clip]) -> None:
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache", encoder)
    good = cache.embed_clips(clips, progress=False)
    (shard,) = shard_files(cache)
    # what a process killed inside atomic_write leaves: a partial file under a temporary name
    (cache.folder / ".shard-0123456789abcdef.safetensors.x1y2z3.tmp").write_bytes(shard.read_bytes()[:100])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reopened = EmbeddingCache(tmp_path / "cache", encoder)
    assert torch.equal(reopened.embed_clips(clips, progress=False), good) and reopened.misses == 0


def test_encoder_crash_keeps_finished_batches(tmp_path: Path, clips: list[Clip]) -> None:
    crashing = CountingEncoder(fail_on_call=2)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        EmbeddingCache(tmp_path / "cache", crashing).embed_clips(clips, batch_size=4, progress=False)
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache", encoder)
    assert len(cache) == 4
    assert torch.equal(cache.embed_clips(clips, progress=False), direct(encoder, clips))
    assert (cache.hits, cache.misses) == (4, 2)


def test_small_writes_are_merged_into_few_shards(tmp_path: Path, clips: list[Clip]) -> None:
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache", encoder, flush_every=2, max_shards=2)
    out = cache.embed_clips(clips, batch_size=1, progress=False)  # flushes every 2 entries
    for clip in clips:  # one call per clip, all hits: nothing written
        cache.embed_clips([clip], progress=False)
    assert 1 <= len(shard_files(cache)) <= 2
    more = [write_clip(tmp_path / "audio", f"d{k}", seed=100 + k) for k in range(5)]
    for clip in more:  # one call, one miss, one shard each
        cache.embed_clips([clip], progress=False)
    assert len(shard_files(cache)) <= 2
    reopened = EmbeddingCache(tmp_path / "cache", encoder)
    assert len(reopened) == 11
    assert torch.equal(reopened.embed_clips(clips, progress=False), out)


def test_bad_input_and_bad_encoder_output(tmp_path: Path, clips: list[Clip]) -> None:
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache", encoder)
    with pytest.raises(PrefcapError, match="no audio_path"):
        cache.embed_clips([Clip(id="silent")], progress=False)
    assert cache.embed_clips([], progress=False).shape == (0, 8)

    encoder.embed_audio = lambda waveforms, sr: torch.full((len(waveforms), 8), float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        cache.embed_clips(clips[:1], progress=False)
    encoder.embed_audio = lambda waveforms, sr: torch.zeros(len(waveforms), 3)
    with pytest.raises(ValueError, match="shape"):
        cache.embed_clips(clips[:1], progress=False)
    assert len(cache) == 0 and not shard_files(cache)
