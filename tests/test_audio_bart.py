"""The audio-bart backend on a tiny model, taught two captions in a few steps (nothing downloaded)."""

import json

import numpy as np
import pytest
import torch

from conftest import TINY_BART, check_beam_contract, check_gradients_and_k_rows, check_resampling, two_tones
from prefcap.captioners import load as load_module
from prefcap.captioners.audio_bart import AudioBartCaptioner, AudioBartForCaptioning
from prefcap.captioners.base import META_FILE, Decoding
from prefcap.captioners.hf_speech import SpeechSeq2SeqCaptioner
from prefcap.captioners.load import load_captioner
from prefcap.errors import PrefcapError
from prefcap.tokenizer import train_tokenizer

SR = 16000
EOS = 2
SENTENCES = [
    "a dog barks while cars pass by",
    "rain falls on a metal roof",
    "a man speaks and a door closes",
    "birds chirp in the distance as wind blows",
    "water runs from a tap into a sink",
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    noise = 0.5 * np.random.default_rng(0).standard_normal(SR)
    tone = 0.3 * np.sin(2 * np.pi * 300 * np.arange(3 * SR // 2) / SR)
    return [noise.astype(np.float32), tone.astype(np.float32)]


@pytest.fixture(scope="module")
def captioner(waves) -> AudioBartCaptioner:
    """Half-taught (25 steps) to caption the noise with the first sentence and the tone with the second: greedy
    gives those, sampling still wanders, and some samples end early while others run to the limit."""
    torch.manual_seed(0)
    captioner = AudioBartCaptioner.new(train_tokenizer(SENTENCES, 300), **TINY_BART)
    optimizer = torch.optim.Adam(captioner.model.parameters(), lr=1e-2)
    captioner.model.train()
    for _ in range(25):
        loss = captioner.teacher_forced_loss(waves, SR, SENTENCES[:2])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    captioner.model.eval()
    return captioner


def sample(temperature: float = 1.0) -> Decoding:
    return Decoding(mode="sample", temperature=temperature, max_new_tokens=30)


@pytest.mark.parametrize("temperature", [0.7, 1.0])
def test_sampled_log_probs_equal_sequence_log_probs(captioner, waves, temperature):
    torch.manual_seed(1)
    gen = captioner.generate(waves, SR, n=3, decoding=sample(temperature))
    rows, length = gen.token_ids.shape
    assert rows == 6 and length <= 30 and [len(t) for t in gen.texts] == [3, 3]
    ended = ~gen.truncated
    assert ended.any() and (gen.mask == 0).any(), "some samples should end before others"
    assert torch.all(gen.log_probs[gen.mask == 0] == 0)
    eos_steps = gen.mask.sum(dim=1).long() - 1
    assert torch.all(gen.token_ids[ended, eos_steps[ended]] == EOS)
    assert torch.all(gen.log_probs[ended, eos_steps[ended]] < 0)
    scored = captioner.sequence_log_probs(waves, SR, gen.token_ids, gen.mask, temperature)
    torch.testing.assert_close(gen.log_probs, scored.detach(), atol=1e-4, rtol=0)
    # Clip-major rows: clip 0's three captions score the same against clip 0 alone.
    alone = captioner.sequence_log_probs(waves[:1], SR, gen.token_ids[:3], gen.mask[:3], temperature)
    torch.testing.assert_close(alone.detach(), gen.log_probs[:3], atol=1e-4, rtol=0)


def test_greedy_is_deterministic_clip_major_and_decoded_without_special_tokens(captioner, waves):
    gen = captioner.generate(waves, SR, n=2)
    again = captioner.generate(waves, SR, n=2)
    assert gen.texts == [[SENTENCES[0]] * 2, [SENTENCES[1]] * 2]
    assert torch.equal(gen.token_ids, again.token_ids) and torch.equal(gen.token_ids[2], gen.token_ids[3])
    assert not gen.truncated.any()
    scored = captioner.sequence_log_probs(waves, SR, gen.token_ids, gen.mask)
    torch.testing.assert_close(gen.log_probs, scored.detach(), atol=1e-4, rtol=0)


def test_beam_returns_n_distinct_best_beams(captioner, waves):
    check_beam_contract(captioner, waves, SR)


def test_sequence_log_probs_has_gradients_and_k_rows_per_clip(captioner, waves):
    model = captioner.model
    check_gradients_and_k_rows(captioner, waves, SR, sample(), [
        model.mel_norm.weight, model.downsample[0].weight, model.bart.model.encoder.layers[0].fc1.weight,
        model.bart.model.decoder.layers[0].fc1.weight])


def test_a_clip_captions_the_same_alone_and_padded_in_a_batch(captioner, waves):
    """The frame mask must hide the padding from the normalisation, the convolutions and both attentions."""
    short, longer = waves[0], np.concatenate([waves[1], waves[1]])
    alone = captioner.generate([short], SR)
    batched = captioner.generate([short, longer], SR)
    assert batched.texts[0] == alone.texts[0]
    assert torch.equal(batched.token_ids[0][batched.mask[0].bool()], alone.token_ids[0][alone.mask[0].bool()])
    scored_alone = captioner.sequence_log_probs([short], SR, alone.token_ids, alone.mask)
    pair_ids, pair_mask = alone.token_ids.repeat(2, 1), alone.mask.repeat(2, 1)
    scored_batched = captioner.sequence_log_probs([short, longer], SR, pair_ids, pair_mask)[:1]
    torch.testing.assert_close(scored_batched, scored_alone, atol=1e-5, rtol=0)
    # The same zeros counted as audio do change the scores: the check above is not vacuous.
    zero_padded = np.pad(short, (0, len(longer) - len(short)))
    unmasked = captioner.sequence_log_probs([zero_padded], SR, alone.token_ids, alone.mask)
    assert (unmasked - scored_alone).abs().max() > 1e-3


def test_teacher_forced_loss_is_the_mean_token_nll(captioner, waves):
    """The training loss scores exactly the completions `generate` produces: the caption's tokens, then EOS."""
    gen = captioner.generate(waves, SR)
    with torch.no_grad():
        log_probs = captioner.sequence_log_probs(waves, SR, gen.token_ids, gen.mask)
        loss = captioner.teacher_forced_loss(waves, SR, [texts[0] for texts in gen.texts])
        smoothed = captioner.teacher_forced_loss(waves, SR, [texts[0] for texts in gen.texts], label_smoothing=0.1)
    torch.testing.assert_close(loss, -log_probs.sum() / gen.mask.sum(), atol=1e-5, rtol=0)
    assert smoothed > loss
    with pytest.raises(ValueError, match="one text per clip"):
        captioner.teacher_forced_loss(waves, SR, SENTENCES[:1])


def test_save_load_round_trip(captioner, waves, tmp_path):
    captioner.save(tmp_path)
    assert json.loads((tmp_path / META_FILE).read_text()) == {"backend": "audio-bart"}
    loaded = AudioBartCaptioner.load(tmp_path, device="cpu")
    assert isinstance(loaded.model, AudioBartForCaptioning) and not loaded.model.training
    before, after = captioner.generate(waves, SR, n=2), loaded.generate(waves, SR, n=2)
    assert before.texts == after.texts and torch.equal(before.token_ids, after.token_ids)
    with torch.no_grad():
        scores = [c.sequence_log_probs(waves, SR, before.token_ids, before.mask) for c in (captioner, loaded)]
    assert torch.equal(*scores)
    via_dispatch = load_captioner(tmp_path, device="cpu")
    assert isinstance(via_dispatch, AudioBartCaptioner)
    assert torch.equal(via_dispatch.generate(waves, SR).token_ids, captioner.generate(waves, SR).token_ids)


def test_other_sample_rates_are_resampled(captioner):
    check_resampling(captioner, SR)
    assert captioner._inputs([two_tones(44100)], 44100)[0].shape == (1, int(1.5 * SR))


def test_limits_are_clear_errors(captioner):
    assert captioner.model.config.max_seconds == pytest.approx(5.12)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        captioner.generate([np.zeros(6 * SR, dtype=np.float32)], SR)
    with pytest.raises(ValueError, match="max_new_tokens"):
        captioner.generate([np.zeros(SR, dtype=np.float32)], SR, decoding=Decoding(max_new_tokens=64))


def test_load_captioner_dispatches_on_the_backend(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setitem(load_module.BACKENDS, "hf-speech-seq2seq", lambda path, device: calls.append(("load", path)))
    monkeypatch.setattr(SpeechSeq2SeqCaptioner, "from_pretrained",
                        lambda path, device: calls.append(("from_pretrained", path)))
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / META_FILE).write_text(json.dumps({"backend": "hf-speech-seq2seq", "prompt": None, "start_ids": [1]}))
    plain = tmp_path / "plain"
    plain.mkdir()
    for target in (saved, plain, "openai/whisper-tiny"):
        load_captioner(target)
    assert calls == [("load", saved), ("from_pretrained", plain), ("from_pretrained", "openai/whisper-tiny")]


def test_load_captioner_errors_name_the_problem(captioner, tmp_path):
    with pytest.raises(PrefcapError, match="no such captioner folder"):
        load_captioner(tmp_path / "missing" / "captioner")
    (tmp_path / "file").write_text("x")
    with pytest.raises(PrefcapError, match="a file, not a captioner folder"):
        load_captioner(tmp_path / "file")
    with pytest.raises(PrefcapError, match="could not be loaded"):
        load_captioner(tmp_path)  # an empty folder: no model in it
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / META_FILE).write_text("{not json")
    with pytest.raises(PrefcapError, match="not a JSON object"):
        load_captioner(broken)
    (broken / META_FILE).write_text(json.dumps({"backend": "nonsense"}))
    with pytest.raises(PrefcapError, match="unknown captioner backend 'nonsense'"):
        load_captioner(broken)
    captioner.save(broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(PrefcapError, match="could not be loaded"):
        load_captioner(broken, device="cpu")
    (broken / "model.safetensors").unlink()
    with pytest.raises(PrefcapError, match="could not be loaded"):
        load_captioner(broken, device="cpu")


def test_word_dropout_replaces_decoder_inputs_but_never_the_start():
    from prefcap.captioners.base import drop_words

    torch.manual_seed(0)
    ids = torch.full((64, 20), 7)
    dropped = drop_words(ids, 0.3, replacement_id=4, keep_first=2)
    assert (dropped[:, :2] == 7).all()
    share = (dropped[:, 2:] == 4).float().mean().item()
    assert 0.25 < share < 0.35
    assert torch.equal(drop_words(ids, 0.0, replacement_id=4), ids)
