"""The hf-speech-seq2seq backend on a tiny random Whisper with a tokenizer trained here (nothing downloaded)."""

import json

import numpy as np
import pytest
import torch
from transformers import (
    GenerationConfig,
    Speech2TextConfig,
    Speech2TextFeatureExtractor,
    Speech2TextForConditionalGeneration,
    WhisperConfig,
)

from conftest import check_beam_contract, check_gradients_and_k_rows, check_resampling, two_tones
from prefcap.captioners.base import META_FILE, Decoding
from prefcap.captioners.hf_speech import SpeechSeq2SeqCaptioner, default_start_ids
from tiny_models import EOS, NO_TIMESTAMPS, SOT, save_tiny_whisper, whisper_tokenizer

PROMPT = "clotho > caption: "
SR = 16000


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory):
    return save_tiny_whisper(tmp_path_factory.mktemp("whisper-tiny"))


@pytest.fixture(scope="module")
def captioner(folder) -> SpeechSeq2SeqCaptioner:
    return SpeechSeq2SeqCaptioner.from_pretrained(folder, prompt=PROMPT, device="cpu")


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    noise = 0.5 * np.random.default_rng(0).standard_normal(SR)
    tone = 0.3 * np.sin(2 * np.pi * 300 * np.arange(3 * SR // 2) / SR)
    return [noise.astype(np.float32), tone.astype(np.float32)]


def sample(temperature: float = 1.0) -> Decoding:
    return Decoding(mode="sample", temperature=temperature, max_new_tokens=12)


def test_prefix_is_start_tokens_then_prompt(captioner):
    prompt_ids = captioner.tokenizer(PROMPT, add_special_tokens=False).input_ids
    assert captioner.start_ids == [SOT, NO_TIMESTAMPS]
    assert captioner.prefix.tolist() == [[SOT, NO_TIMESTAMPS, *prompt_ids]]
    assert captioner.sample_rate == SR


@pytest.mark.parametrize("temperature", [0.7, 1.0])
def test_sampled_log_probs_equal_sequence_log_probs(captioner, waves, temperature):
    torch.manual_seed(1)
    gen = captioner.generate(waves, SR, n=3, decoding=sample(temperature))
    rows, length = gen.token_ids.shape
    assert rows == 6 and length <= 12 and [len(t) for t in gen.texts] == [3, 3]
    ended = ~gen.truncated
    assert ended.any() and (gen.mask == 0).any(), "the EOS bias should end some captions early"
    assert not any(PROMPT.strip() in text for texts in gen.texts for text in texts)
    assert torch.all(gen.log_probs[gen.mask == 0] == 0)
    eos_steps = gen.mask.sum(dim=1).long() - 1
    assert torch.all(gen.token_ids[ended, eos_steps[ended]] == EOS)
    assert torch.all(gen.log_probs[ended, eos_steps[ended]] < 0)
    scored = captioner.sequence_log_probs(waves, SR, gen.token_ids, gen.mask, temperature)
    torch.testing.assert_close(gen.log_probs, scored.detach(), atol=1e-4, rtol=0)
    # Clip-major rows: clip 0's three captions score the same against clip 0 alone.
    torch.testing.assert_close(captioner.sequence_log_probs(waves[:1], SR, gen.token_ids[:3], gen.mask[:3],
                                                            temperature).detach(), gen.log_probs[:3], atol=1e-4,
                               rtol=0)


def test_greedy_is_deterministic_clip_major_and_consistent(captioner, waves):
    gen = captioner.generate(waves, SR, n=2)
    again = captioner.generate(waves, SR, n=2)
    single = captioner.generate(waves[1:], SR)
    assert gen.texts == again.texts and torch.equal(gen.token_ids, again.token_ids)
    assert gen.texts[0] != gen.texts[1], "the two clips should caption differently"
    assert gen.texts[1] == [single.texts[0][0]] * 2
    assert torch.equal(gen.token_ids[2][gen.mask[2].bool()], single.token_ids[0][single.mask[0].bool()])
    assert torch.equal(gen.token_ids[0], gen.token_ids[1])
    scored = captioner.sequence_log_probs(waves, SR, gen.token_ids, gen.mask)
    torch.testing.assert_close(gen.log_probs, scored.detach(), atol=1e-4, rtol=0)


def test_beam_returns_n_distinct_best_beams(captioner, waves):
    check_beam_contract(captioner, waves, SR)


def test_sequence_log_probs_has_gradients_and_k_rows_per_clip(captioner, waves):
    model = captioner.model.model
    check_gradients_and_k_rows(captioner, waves, SR, sample(),
                               [model.encoder.conv1.weight, model.decoder.layers[0].fc1.weight])


def test_save_load_round_trip(captioner, waves, tmp_path):
    captioner.save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta == {"backend": "hf-speech-seq2seq", "prompt": PROMPT, "start_ids": [SOT, NO_TIMESTAMPS]}
    loaded = SpeechSeq2SeqCaptioner.load(tmp_path, device="cpu")
    before, after = captioner.generate(waves, SR), loaded.generate(waves, SR)
    assert before.texts == after.texts and torch.equal(before.token_ids, after.token_ids)


def test_other_sample_rates_are_resampled(captioner):
    native = check_resampling(captioner, SR)
    unresampled = captioner.sequence_log_probs([two_tones(44100)], SR, native.token_ids, native.mask)
    assert (unresampled.detach() - native.log_probs).abs().max() > 0.1


def test_model_generation_config_does_not_steer_decoding(captioner, waves):
    plain = captioner.generate(waves, SR)
    saved = captioner.model.generation_config
    steered = GenerationConfig.from_dict(saved.to_dict())
    steered.suppress_tokens = list(range(1, len(captioner.tokenizer)))
    steered.no_repeat_ngram_size = 1
    steered.top_k = 1
    captioner.model.generation_config = steered
    try:
        assert torch.equal(captioner.generate(waves, SR).token_ids, plain.token_ids)
        assert captioner.model.generation_config is steered
    finally:
        captioner.model.generation_config = saved


def test_default_start_ids():
    whisper = WhisperConfig(decoder_start_token_id=SOT)
    languages = dict(lang_to_id={"<|en|>": 2, "<|de|>": 7}, task_to_id={"transcribe": 3, "translate": 8},
                     no_timestamps_token_id=NO_TIMESTAMPS)
    assert default_start_ids(whisper, GenerationConfig(decoder_start_token_id=SOT)) == [SOT]
    assert default_start_ids(whisper, GenerationConfig(decoder_start_token_id=SOT, language="german",
                                                       **languages)) == [SOT, 7, 3, NO_TIMESTAMPS]
    assert default_start_ids(whisper, GenerationConfig(decoder_start_token_id=SOT, language="<|en|>",
                                                       task="translate", **languages)) == [SOT, 2, 8, NO_TIMESTAMPS]
    # The legacy forced ids, with the language left to detection: omitted, no audio-dependent prefix.
    legacy = GenerationConfig(decoder_start_token_id=SOT, forced_decoder_ids=[[1, None], [2, 3]], **languages)
    assert default_start_ids(whisper, legacy) == [SOT, 3, NO_TIMESTAMPS]
    with pytest.raises(ValueError, match="lang_to_id"):
        default_start_ids(whisper, GenerationConfig(decoder_start_token_id=SOT, language="fr", **languages))
    assert default_start_ids(Speech2TextConfig(decoder_start_token_id=2), GenerationConfig()) == [2]


def test_generic_seq2seq_model_pads_the_batch_and_masks_the_encoder():
    """Speech2Text: features padded to the longest clip, with an attention mask that must follow the k rows."""
    rng = np.random.default_rng(1)  # noise: its extractor's per-utterance normalisation divides a pure tone by 0
    waves = [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in (SR // 2, SR)]
    tokenizer = whisper_tokenizer()
    config = Speech2TextConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, input_feat_per_channel=80,
        conv_channels=32, max_source_positions=200, max_target_positions=64, decoder_start_token_id=SOT,
        eos_token_id=EOS, pad_token_id=EOS, bos_token_id=EOS,
    )
    torch.manual_seed(0)
    model = Speech2TextForConditionalGeneration(config).eval()
    captioner = SpeechSeq2SeqCaptioner(model, Speech2TextFeatureExtractor(feature_size=80, num_mel_bins=80),
                                       tokenizer, prompt=PROMPT)
    assert captioner.start_ids == [SOT]
    torch.manual_seed(3)
    gen = captioner.generate(waves, SR, n=2, decoding=sample(0.7))
    assert "attention_mask" in captioner._features(waves, SR)
    scored = captioner.sequence_log_probs(waves, SR, gen.token_ids, gen.mask, 0.7)
    torch.testing.assert_close(gen.log_probs, scored.detach(), atol=1e-4, rtol=0)
    scored.sum().backward()
    assert model.model.encoder.conv.conv_layers[0].weight.grad.abs().sum() > 0


def test_teacher_forced_loss_is_the_mean_token_nll(captioner, waves):
    """The sft loss scores exactly the completions `generate` produces, after the prefix."""
    gen = captioner.generate(waves, SR, decoding=Decoding(max_new_tokens=8))
    texts = [texts[0] for texts in gen.texts]
    ended = ~gen.truncated
    assert ended.any()
    rows = captioner.tokenizer(texts, add_special_tokens=False).input_ids
    assert all(row + [EOS] == gen.token_ids[i][gen.mask[i].bool()].tolist()
               for i, row in enumerate(rows) if ended[i]), "texts re-tokenize to the generated tokens"
    with torch.no_grad():
        log_probs = captioner.sequence_log_probs(waves, SR, gen.token_ids, gen.mask)
        loss = captioner.teacher_forced_loss([w for w, e in zip(waves, ended, strict=True) if e], SR,
                                             [t for t, e in zip(texts, ended, strict=True) if e])
    torch.testing.assert_close(loss, -log_probs[ended].sum() / gen.mask[ended].sum(), atol=1e-5, rtol=0)
