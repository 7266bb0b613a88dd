"""Real recordings through ingestion, the encoders and a captioner: Debian's CC0 `sonic-pi-samples` (FLAC, one
WAV) and `sound-theme-freedesktop` (Ogg Vorbis, named .oga), plus MP3 copies of a few of them — formats, sample
rates (8 to 96 kHz) and channel counts as they come. `.ci/run` installs both packages; under CI=true their
absence fails the test instead of skipping it."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import TINY_BART
from prefcap.captioners.infer import caption_clips
from prefcap.captioners.sft import new_captioner
from prefcap.data.ingest import ingest
from prefcap.data.records import read_clips
from prefcap.encoders.cache import EmbeddingCache
from prefcap.encoders.clap import ClapEncoder
from prefcap.encoders.train import EncoderTrainConfig, build_clap
from prefcap.tokenizer import train_tokenizer

PACKAGES = {"sonic-pi-samples": Path("/usr/share/sonic-pi"),
            "sound-theme-freedesktop": Path("/usr/share/sounds/freedesktop/stereo")}
WORDS = ["a bell rings", "a drum beats", "a choir sings", "an alarm beeps", "a bass hum drones"]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    missing = [name for name, folder in PACKAGES.items() if not folder.is_dir()]
    if missing:
        problem = f"Debian packages missing: {', '.join(missing)} (apt-get install {' '.join(missing)})"
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    root = tmp_path_factory.mktemp("recordings")
    for name, folder in PACKAGES.items():
        (root / name).symlink_to(folder, target_is_directory=True)
    mp3 = root / "mp3"
    mp3.mkdir()
    for flac in sorted((PACKAGES["sonic-pi-samples"] / "samples").glob("*.flac"))[:3]:
        audio, sr = sf.read(flac)
        sf.write(mp3 / f"{flac.stem}.mp3", audio, sr, format="MP3")
    return root


def test_real_recordings_ingest_embed_and_caption(recordings, tmp_path, one_thread):
    files = [Path(root, name) for root, _, names in os.walk(recordings, followlinks=True) for name in names
             if Path(name).suffix.lower() in (".flac", ".wav", ".oga", ".mp3")]
    kinds = {(sf.info(p).format, sf.info(p).samplerate, sf.info(p).channels) for p in files}
    assert {f for f, _, _ in kinds} == {"FLAC", "WAV", "OGG", "MP3"} and len({r for _, r, _ in kinds}) >= 4
    assert {c for _, _, c in kinds} == {1, 2}

    report = ingest(recordings, tmp_path / "data", kind="folder")
    clips = read_clips(tmp_path / "data" / "clips.jsonl")
    assert report.n_rejected == report.n_missing == 0 and len(clips) == len(files) > 200  # nothing readable refused
    assert not (tmp_path / "data" / "captions.jsonl").read_text().strip()  # a plain folder has no captions

    config = EncoderTrainConfig(audio_channels=(8, 8, 8, 8), text_hidden=16, text_layers=1, projection_dim=16)
    model, extractor = build_clap(config, 200)
    tokenizer = train_tokenizer(WORDS, 200)
    encoder = ClapEncoder(model, extractor, tokenizer, "offline", device="cpu")
    audio = EmbeddingCache(tmp_path / "cache", encoder).embed_clips(clips, progress=False)
    assert audio.shape == (len(clips), 16) and np.isfinite(audio.numpy()).all()
    assert np.allclose(audio.norm(dim=1).numpy(), 1, atol=1e-4)

    # a captioner that takes 12.8 s captions every clip; the default size (5.12 s) refuses the longer ones by name
    roomy = new_captioner(WORDS, vocab_size=200, max_position_embeddings=160, **TINY_BART)
    captions, rejected = caption_clips(roomy, clips, "tiny", progress=False)
    assert rejected == [] and [c.clip_id for c in captions] == [c.id for c in clips]
    short = new_captioner(WORDS, vocab_size=200, **TINY_BART)
    captions, rejected = caption_clips(short, clips, "tiny", progress=False)
    longer = {str(c.audio_path) for c in clips if sf.info(c.audio_path).duration > short.max_seconds}
    assert longer and {r["path"] for r in rejected} == longer and {r["reason"] for r in rejected} == {"too_long"}
    assert all(f"limit {short.max_seconds:g} s" in r["message"] for r in rejected)
    assert len(captions) == len(clips) - len(longer)
