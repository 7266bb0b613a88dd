"""Tiny randomly initialised transformers checkpoints saved like hub models (nothing is downloaded): the real-model
code paths run on them in seconds."""

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    ClapConfig,
    ClapFeatureExtractor,
    ClapModel,
    GenerationConfig,
    PreTrainedTokenizerFast,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)

from prefcap.encoders.clap import ClapEncoder
from prefcap.tokenizer import train_tokenizer

SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
EOS, SOT, NO_TIMESTAMPS = 0, 1, 4
EOS_BIAS = 3.0
SENTENCES = [
    "clotho > caption: a dog barks while cars pass by",
    "audiocaps > caption: rain falls on a metal roof",
    "a man speaks and a door closes",
    "birds chirp in the distance as wind blows",
    "water runs from a tap into a sink",
]


def whisper_tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(SENTENCES, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=SPECIALS[EOS], pad_token=SPECIALS[EOS],
                                   bos_token=SPECIALS[EOS], additional_special_tokens=SPECIALS[1:])


def whisper_model(vocab_size: int) -> WhisperForConditionalGeneration:
    config = WhisperConfig(
        vocab_size=vocab_size, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
        max_source_positions=100, max_target_positions=64, decoder_start_token_id=SOT, eos_token_id=EOS,
        pad_token_id=EOS, bos_token_id=EOS, init_std=0.2,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    # Built explicitly: one derived from the model config is saved with `_from_model_config`, and loading such a
    # file drops the Whisper-specific fields (no_timestamps_token_id).
    model.generation_config = GenerationConfig(decoder_start_token_id=SOT, eos_token_id=EOS, pad_token_id=EOS,
                                               bos_token_id=EOS, no_timestamps_token_id=NO_TIMESTAMPS)
    with torch.no_grad():
        # Give EOS (the padding row, zero at init) a unit embedding, tied to the output layer, and push the final
        # hidden state toward it, so that sampled captions often end within a few tokens.
        direction = torch.randn(config.d_model)
        model.model.decoder.embed_tokens.weight[EOS] = direction / direction.norm()
        model.model.decoder.layer_norm.bias += EOS_BIAS * direction / direction.norm()
    return model


def save_tiny_whisper(path: Path) -> Path:
    tokenizer = whisper_tokenizer()
    whisper_model(len(tokenizer)).save_pretrained(path)
    WhisperFeatureExtractor(chunk_length=2).save_pretrained(path)  # 200 frames = 2 * max_source_positions
    tokenizer.save_pretrained(path)
    return path


CLAP_TEXTS = ["a siren wails", "rain falls in the background", "a dog barks twice", "birds chirp while wind blows"]


def save_tiny_clap(folder: Path, sample_rate: int = 16_000) -> Path:
    """A randomly initialised transformers ClapModel (HTSAT + RoBERTa) in the folder layout of a hub checkpoint."""
    torch.manual_seed(0)
    tokenizer = train_tokenizer(CLAP_TEXTS * 5, vocab_size=300)
    config = ClapConfig(
        audio_config=dict(spec_size=64, num_mel_bins=32, patch_size=4, patch_stride=(4, 4), hidden_size=128,
                          depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 2, 2], window_size=2,
                          patch_embeds_hidden_size=16, enable_fusion=False, projection_dim=24),
        text_config=dict(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                         intermediate_size=32, max_position_embeddings=34, pad_token_id=1, projection_dim=24),
        projection_dim=24,
    )
    extractor = ClapFeatureExtractor(feature_size=32, sampling_rate=sample_rate, hop_length=256, max_length_s=1,
                                     fft_window_size=512, frequency_max=8000)
    ClapEncoder(ClapModel(config), extractor, tokenizer, "tiny").save(folder)
    return folder
