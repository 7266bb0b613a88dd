import os
import uuid

import numpy as np
import pytest
import torch

import postgres_cluster
from prefcap.data.records import Clip
from prefcap.synth.scene import sample_scene


def synthetic_clips(domain: str, n: int, seed: int = 0) -> list[Clip]:
    """Clips that carry only a scene (no audio): enough for grammar, parser and annotator checks."""
    rng = np.random.default_rng(seed)
    return [Clip(id=f"{domain}-{k}", domain=domain, metadata={"scene": sample_scene(rng, domain).to_dict()})
            for k in range(n)]


@pytest.fixture(scope="session")
def target_clips() -> list[Clip]:
    return synthetic_clips("target", 300, seed=11)


# A tiny audio-BART, for tests that need a real captioner and no training.
TINY_BART = dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                 encoder_ffn_dim=64, decoder_ffn_dim=64)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and threads spinning on a busy machine slow these tests threefold."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def check_beam_contract(captioner, waves, sr: int) -> None:
    """Any Captioner: n distinct best beams per clip (clip-major), log-probs equal to teacher forcing, and
    n > num_beams refused."""
    from prefcap.captioners.base import Decoding
    from prefcap.errors import PrefcapError

    gen = captioner.generate(waves, sr, n=3, decoding=Decoding(mode="beam", num_beams=4, max_new_tokens=8))
    assert gen.token_ids.shape[0] == 3 * len(waves)
    for clip in range(len(waves)):
        clip_rows = slice(3 * clip, 3 * clip + 3)
        rows = {tuple(row[mask.bool()].tolist())
                for row, mask in zip(gen.token_ids[clip_rows], gen.mask[clip_rows], strict=True)}
        assert len(rows) == 3
    scored = captioner.sequence_log_probs(waves, sr, gen.token_ids, gen.mask)
    torch.testing.assert_close(gen.log_probs, scored.detach(), atol=1e-5, rtol=0)
    with pytest.raises(PrefcapError, match="num_beams"):
        captioner.generate(waves, sr, n=5, decoding=Decoding(mode="beam", num_beams=4))


def check_gradients_and_k_rows(captioner, waves, sr: int, decoding, parameters) -> None:
    """Any Captioner: sequence_log_probs keeps gradients that reach `parameters`, scores k rows per clip as
    if each row had its own copy of the clip, and refuses rows that do not divide among the clips."""
    torch.manual_seed(2)
    gen = captioner.generate(waves, sr, n=2, decoding=decoding)
    captioner.model.zero_grad()
    log_probs = captioner.sequence_log_probs(waves, sr, gen.token_ids, gen.mask)
    assert log_probs.requires_grad
    (-log_probs.sum()).backward()
    for parameter in parameters:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    captioner.model.zero_grad()
    repeated = [clip for clip in waves for _ in range(2)]
    one_per_clip = captioner.sequence_log_probs(repeated, sr, gen.token_ids, gen.mask)
    torch.testing.assert_close(log_probs, one_per_clip, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="clips"):
        captioner.sequence_log_probs(waves, sr, gen.token_ids[:3], gen.mask[:3])


def two_tones(sr: int, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)).astype(np.float32)


def check_resampling(captioner, sr: int):
    """Any Captioner: audio at other rates scores like native audio, and generates exactly like audio resampled
    beforehand. Returns the native generation for backend-specific checks."""
    from prefcap.captioners.base import Decoding
    from prefcap.data.audio import resample

    short = Decoding(max_new_tokens=8)
    native = captioner.generate([two_tones(sr)], sr, decoding=short)
    for other_sr in (44100, 8000):
        other = captioner.sequence_log_probs([two_tones(other_sr)], other_sr, native.token_ids, native.mask)
        torch.testing.assert_close(other.detach(), native.log_probs, atol=2e-2, rtol=0)
    resampled = captioner.generate([resample(two_tones(44100), 44100, sr)], sr, decoding=short)
    assert torch.equal(captioner.generate([two_tones(44100)], 44100, decoding=short).token_ids, resampled.token_ids)
    return native


def build_prefs_store(root, n_clips: int = 6, audio: bool = True, annotators: tuple[str, ...] = ("ann-a", "ann-b"),
                      overlap: int = 1, seed: int = 0, db=None):
    """A judgment store with synthetic clips (scene metadata; short WAVs if `audio`), one pair per clip (sys-1 says
    a reference sentence, sys-2 the same with an event swapped for a wrong one), the named annotators (returns
    their tokens) and their queues. `db`: the store's file or server URL (default: prefs.sqlite in `root`)."""
    from pathlib import Path

    from prefcap.data.audio import write_wav
    from prefcap.data.records import Caption
    from prefcap.prefs.assign import AssignConfig, assign
    from prefcap.prefs.store import NewPair, Store
    from prefcap.synth.faults import single_fault_pair

    root = Path(root)
    store = Store(db or root / "prefs.sqlite")
    pairs = []
    for k, clip in enumerate(synthetic_clips("target", n_clips, seed=seed)):
        if audio:
            path = root / "audio" / f"{clip.id}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, two_tones(16_000, 0.5) * (1 + k % 3) / 3, 16_000)
            clip = clip.model_copy(update={"audio_path": str(path)})
        good, bad = single_fault_pair(clip, "swap", np.random.default_rng([seed, k]))
        pairs.append(NewPair(clip, Caption(clip_id=clip.id, text=good, source="sys-1"),
                             Caption(clip_id=clip.id, text=bad, source="sys-2")))
    store.add_pairs(pairs, origin="test")
    tokens = {name: store.add_annotator(name) for name in annotators}
    if annotators:
        assign(store, AssignConfig(overlap=overlap, seed=seed))
    return store, tokens


@pytest.fixture(scope="session")
def postgres_server():
    """A throw-away PostgreSQL server for the whole session. Missing binaries or driver skip its tests, except under
    CI=true, where they fail: CI installs both, so a skip there would hide a broken set-up."""
    reason = postgres_cluster.missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL tests cannot run under CI=true: {reason}")
        pytest.skip(reason)
    with postgres_cluster.throwaway_cluster() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    """Where a test's judgment store lives, once per backend: a SQLite file, or a fresh database on the throw-away
    PostgreSQL server (`pytest -k postgres` selects those)."""
    if request.param == "sqlite":
        return tmp_path / "prefs.sqlite"
    server = request.getfixturevalue("postgres_server")
    return postgres_cluster.create_database(server, f"test_{uuid.uuid4().hex[:12]}")
