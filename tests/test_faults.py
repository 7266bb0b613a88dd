"""Damaged artifacts on disk: a truncated or altered model is refused on load with a message that names the file,
never a crash deep inside torch or safetensors."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import TINY_BART
from prefcap.captioners.base import save_captioner
from prefcap.captioners.load import load_captioner
from prefcap.captioners.sft import new_captioner
from prefcap.cli import main
from prefcap.encoders.clap import ClapEncoder
from prefcap.errors import PrefcapError
from prefcap.io import CHECKSUMS_FILE
from prefcap.reward.model import WEIGHTS_FILE, RewardConfig, RewardModel
from tiny_models import save_tiny_clap


@pytest.fixture
def reward_folder(tmp_path) -> Path:
    RewardModel.new(RewardConfig(hidden=(8, 4), ensemble=2), "clap-x", dim=6).save(tmp_path / "reward")
    return tmp_path / "reward"


@pytest.fixture
def captioner_folder(tmp_path) -> Path:
    captioner = new_captioner(["a dog barks", "rain falls on a roof"] * 10, vocab_size=300, **TINY_BART)
    save_captioner(captioner, tmp_path / "captioner")
    return tmp_path / "captioner"


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_saved_models_load_and_record_their_files(reward_folder, captioner_folder):
    assert RewardModel.load(reward_folder, encoder_id="clap-x").config.ensemble == 2
    assert load_captioner(captioner_folder, device="cpu").generate
    assert (reward_folder / CHECKSUMS_FILE).is_file() and (captioner_folder / CHECKSUMS_FILE).is_file()


@pytest.mark.parametrize("damage, message", [(truncate, "truncated or incomplete copy"),
                                             (flip_last_byte, "sha256 mismatch")])
def test_a_damaged_reward_model_is_refused_by_name(reward_folder, damage, message):
    damage(reward_folder / WEIGHTS_FILE)
    with pytest.raises(PrefcapError, match=rf"{WEIGHTS_FILE}: .*{message}"):
        RewardModel.load(reward_folder)


@pytest.mark.parametrize("damage, message", [(truncate, "truncated or incomplete copy"),
                                             (flip_last_byte, "sha256 mismatch")])
def test_a_damaged_captioner_is_refused_by_name(captioner_folder, damage, message):
    damage(captioner_folder / "model.safetensors")
    with pytest.raises(PrefcapError, match=rf"model.safetensors: .*{message}"):
        load_captioner(captioner_folder, device="cpu")


def test_a_missing_file_is_named(captioner_folder, reward_folder):
    (captioner_folder / "tokenizer.json").unlink()
    with pytest.raises(PrefcapError, match="tokenizer.json is missing"):
        load_captioner(captioner_folder, device="cpu")
    (reward_folder / CHECKSUMS_FILE).write_text("not json")
    with pytest.raises(PrefcapError, match="unreadable checksum record"):
        RewardModel.load(reward_folder)


def test_a_truncated_encoder_is_refused(tmp_path):
    clap = save_tiny_clap(tmp_path / "clap")
    assert ClapEncoder.from_pretrained(clap, device="cpu").dim == 24
    truncate(clap / "model.safetensors", keep=0.9)
    with pytest.raises(PrefcapError, match="model.safetensors: .*truncated"):
        ClapEncoder.from_pretrained(clap, device="cpu")


def test_the_command_line_names_the_damaged_file_in_one_line(tmp_path, captioner_folder, capsys):
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "tone.wav", np.sin(np.arange(8000) / 5).astype(np.float32), 8000)
    truncate(captioner_folder / "model.safetensors", keep=0.99)
    capsys.readouterr()
    assert main(["caption", str(audio), "--captioner", str(captioner_folder), "--out", str(tmp_path / "c.jsonl")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "model.safetensors" in error and "truncated" in error, error
    assert not (tmp_path / "c.jsonl").exists()
