"""The `audio-bart` backend: the small captioner trained here from scratch, the offline default.

A log-mel front end (torch.stft and a mel filterbank, so the model takes waveforms and needs no feature extractor), a
per-bin normalisation, two strided convolutions (x4 fewer frames: 80 ms each) and a `BartForConditionalGeneration`
whose encoder takes those frames as `inputs_embeds`; BART's learned encoder positions are the frame positions.
Clips of different lengths are zero-padded and every stage masks the padding: the normalisation takes its
statistics from real frames only, the convolutions see zeros past a clip's end exactly as they would for the clip
alone, and the encoder and cross-attention get a frame mask. A clip therefore captions the same alone or in a batch.

Decoding follows the hf-speech-seq2seq backend: the generation config is built from `Decoding` alone, rows are
clip-major, greedy decodes once and repeats, beams are rescored by teacher forcing. The decoder starts from EOS
(BART's convention) and the completion is the caption's tokens, then EOS: no BOS is generated.

Score and sample in eval mode: dropout and the batch statistics of the normalisation are for training only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.audio_utils import mel_filter_bank
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.models.bart.modeling_bart import shift_tokens_right
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from prefcap.captioners.base import (
    META_FILE,
    Captioner,
    Decoding,
    Generation,
    clip_major_generation,
    completion_labels,
    completion_mask,
    completions_from_labels,
    decoding_config,
    drop_words,
    model_generation_config,
    returned_per_clip,
    token_log_probs,
    token_scores,
)
from prefcap.data.audio import pad_or_trim, resample
from prefcap.io import atomic_write

BACKEND = "audio-bart"

# The demo size; `AudioBartCaptioner.new` overrides any of them. Ids are the tokenizer's (prefcap.tokenizer:
# bos 0, pad 1, eos 2) and, as in BART, the decoder starts from EOS.
BART_DEFAULTS: dict[str, Any] = dict(
    vocab_size=1000, d_model=192, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
    decoder_attention_heads=4, encoder_ffn_dim=512, decoder_ffn_dim=512, max_position_embeddings=64, dropout=0.1,
    bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=None,
)


class AudioBartConfig(PretrainedConfig):
    """Front-end settings and the nested BART config (a plain dict: one config.json, no sub-config class).

    20 ms hops, 40 ms windows in a 1024-point FFT, 64 mel bins; the convolutions make 80 ms encoder frames, so
    `max_position_embeddings` 64 takes clips up to 5.12 s (`max_seconds`)."""

    model_type = "prefcap_audio_bart"

    def __init__(self, bart: dict[str, Any] | None = None, sample_rate: int = 16_000, n_mels: int = 64,
                 n_fft: int = 1024, win_length: int = 640, hop_length: int = 320, **kwargs):
        super().__init__(**kwargs)
        self.bart = {**BART_DEFAULTS, **(bart or {})}
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length

    @property
    def max_seconds(self) -> float:
        """The longest clip the encoder's positions cover: 4 STFT frames per position (two stride-2 convolutions)."""
        return 4 * self.bart["max_position_embeddings"] * self.hop_length / self.sample_rate


class AudioBartForCaptioning(PreTrainedModel):
    """Waveforms in (`input_values` [B, samples], zero-padded, with a sample `attention_mask`), BART out."""

    config_class = AudioBartConfig
    main_input_name = "input_values"

    def __init__(self, config: AudioBartConfig):
        super().__init__(config)
        d_model = config.bart["d_model"]
        # Saved with the weights: from_pretrained builds the model on the meta device, which would leave
        # non-persistent buffers computed here empty.
        self.register_buffer("window", torch.hann_window(config.win_length))
        filters = mel_filter_bank(num_frequency_bins=config.n_fft // 2 + 1, num_mel_filters=config.n_mels,
                                  min_frequency=0.0, max_frequency=config.sample_rate / 2,
                                  sampling_rate=config.sample_rate, norm="slaney", mel_scale="slaney")
        self.register_buffer("mel_filters", torch.from_numpy(filters.T).float())  # [mels, bins]
        self.mel_norm = nn.BatchNorm1d(config.n_mels)
        self.downsample = nn.ModuleList([nn.Conv1d(config.n_mels, d_model, 3, stride=2, padding=1),
                                         nn.Conv1d(d_model, d_model, 3, stride=2, padding=1)])
        self.bart = BartForConditionalGeneration(BartConfig(**config.bart))
        self.post_init()

    def log_mel(self, input_values: torch.Tensor) -> torch.Tensor:
        """[B, samples] -> [B, mels, 1 + samples // hop], in float32 whatever the autocast. The signal is padded
        with zeros (not reflected) so that a clip's frames do not depend on what follows it in a padded batch."""
        with torch.autocast(input_values.device.type, enabled=False):
            spectrum = torch.stft(input_values.float(), self.config.n_fft, self.config.hop_length,
                                  self.config.win_length, window=self.window, center=True, pad_mode="constant",
                                  return_complex=True)
            return torch.log(self.mel_filters @ spectrum.abs().square() + 1e-6)

    def embed_audio(self, input_values: torch.Tensor,
                    attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's `inputs_embeds` [B, frames, d_model] and their frame mask [B, frames] (long)."""
        mel = self.log_mel(input_values).to(self.dtype)
        lengths = 1 + attention_mask.sum(dim=1) // self.config.hop_length
        valid = _frame_mask(lengths, mel.shape[-1])
        frames = mel.transpose(1, 2)  # [B, T, mels]: the normalisation sees real frames only
        x = torch.zeros_like(frames).masked_scatter(valid.unsqueeze(-1), self.mel_norm(frames[valid]))
        x = x.transpose(1, 2)
        for conv in self.downsample:
            lengths = (lengths + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
            x = F.gelu(conv(x))
            valid = _frame_mask(lengths, x.shape[-1])
            x = x * valid.unsqueeze(1)  # zeros past the end, as the next convolution's padding would be
        if x.shape[-1] > self.config.bart["max_position_embeddings"]:
            seconds = input_values.shape[1] / self.config.sample_rate
            raise ValueError(f"a {seconds:.2f} s clip is longer than this model takes ({self.config.max_seconds:.2f}"
                             " s); build it with a larger max_position_embeddings")
        return x.transpose(1, 2), valid.long()

    def encode(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> tuple[BaseModelOutput, torch.Tensor]:
        """The BART encoder's output and the frame mask that goes with it (the decoder's cross-attention mask)."""
        inputs_embeds, frame_mask = self.embed_audio(input_values, attention_mask)
        return self.bart.get_encoder()(inputs_embeds=inputs_embeds, attention_mask=frame_mask), frame_mask

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor, decoder_input_ids: torch.Tensor,
                **kwargs) -> Seq2SeqLMOutput:
        encoded, frame_mask = self.encode(input_values, attention_mask)
        return self.bart(encoder_outputs=encoded, attention_mask=frame_mask, decoder_input_ids=decoder_input_ids,
                         **kwargs)


def _frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    return torch.arange(frames, device=lengths.device) < lengths.unsqueeze(1)


AutoConfig.register(AudioBartConfig.model_type, AudioBartConfig)
AutoModel.register(AudioBartConfig, AudioBartForCaptioning)


class AudioBartCaptioner(Captioner):
    """`AudioBartForCaptioning` and its tokenizer. `model` and `tokenizer` are public so trainers can reach the
    parameters; tensors in a `Generation` stay on the model's device."""

    name = BACKEND

    def __init__(self, model: AudioBartForCaptioning, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.sample_rate = int(model.config.sample_rate)
        self.max_seconds = model.config.max_seconds
        bart = model.config.bart
        self.start_token_id = int(bart["decoder_start_token_id"])
        self.eos_token_id = int(bart["eos_token_id"])
        self.pad_token_id = int(bart["pad_token_id"])

    @classmethod
    def new(cls, tokenizer: PreTrainedTokenizerBase, **bart_overrides: Any) -> AudioBartCaptioner:
        """A randomly initialised captioner for `tokenizer` (its size and special ids); `bart_overrides` change the
        BART config (d_model, encoder_layers, ...). Seed torch first for a reproducible init."""
        ids = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                   pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                   decoder_start_token_id=tokenizer.eos_token_id)
        return cls(AudioBartForCaptioning(AudioBartConfig(bart={**ids, **bart_overrides})), tokenizer)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> AudioBartCaptioner:
        """Load a folder written by `save`."""
        meta = json.loads((Path(path) / META_FILE).read_text(encoding="utf-8"))
        if meta.get("backend") != BACKEND:
            raise ValueError(f"{path}: backend {meta.get('backend')!r} is not {BACKEND!r}")
        device = device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        model = AudioBartForCaptioning.from_pretrained(path).to(device).eval()
        return cls(model, AutoTokenizer.from_pretrained(path))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        with atomic_write(path / META_FILE) as handle:
            json.dump({"backend": BACKEND}, handle, indent=2)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @torch.no_grad()
    def generate(self, waveforms: Sequence[np.ndarray], sr: int, n: int = 1,
                 decoding: Decoding = Decoding()) -> Generation:  # noqa: B008 (frozen, as in base.py)
        """n captions per clip. Greedy decodes once and repeats it n times; beam returns the n best of
        `num_beams` beams (n <= num_beams); sample draws n independent captions."""
        returned = returned_per_clip(n, decoding)
        if decoding.max_new_tokens >= self.model.config.bart["max_position_embeddings"]:
            raise ValueError(f"max_new_tokens must be below the decoder's max_position_embeddings "
                             f"({self.model.config.bart['max_position_embeddings']}), got {decoding.max_new_tokens}")
        encoded, frame_mask = self.model.encode(*self._inputs(waveforms, sr))
        config = decoding_config(decoding, returned, decoder_start_token_id=self.start_token_id,
                                 eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id)
        # A fresh output object: generate expands it in place for the beams / returned sequences.
        expanded = BaseModelOutput(last_hidden_state=encoded.last_hidden_state)
        with model_generation_config(self.model.bart, config):
            output = self.model.bart.generate(encoder_outputs=expanded, attention_mask=frame_mask,
                                              generation_config=config)
        token_ids = output.sequences[:, 1:]  # after the decoder start token
        mask, truncated = completion_mask(token_ids, self.eos_token_id)
        if decoding.mode == "beam":
            # Per-step logits follow beams that get reordered and pruned, not the returned sequences: rescore.
            log_probs = self._score(encoded, frame_mask, token_ids, mask, 1.0)[0]
        else:
            temperature = decoding.temperature if decoding.mode == "sample" else 1.0
            log_probs = token_log_probs(torch.stack(output.logits, dim=1), token_ids, mask, temperature)
        return clip_major_generation(self.tokenizer, n, returned, token_ids, mask, log_probs, truncated)

    def sequence_log_probs(self, waveforms: Sequence[np.ndarray], sr: int, token_ids: torch.Tensor,
                           mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return self.sequence_scores(waveforms, sr, token_ids, mask, temperature)[0]

    def sequence_scores(self, waveforms: Sequence[np.ndarray], sr: int, token_ids: torch.Tensor,
                        mask: torch.Tensor, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        encoded, frame_mask = self.model.encode(*self._inputs(waveforms, sr))
        return self._score(encoded, frame_mask, token_ids, mask, temperature)

    def tokenize_completions(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        labels = completion_labels(self.tokenizer, texts, self.eos_token_id,
                                   self.model.config.bart["max_position_embeddings"] - 1)
        token_ids, mask = completions_from_labels(labels, self.pad_token_id)
        return token_ids.to(self.device), mask.to(self.device)

    def teacher_forced_loss(self, waveforms: Sequence[np.ndarray], sr: int, texts: Sequence[str],
                            label_smoothing: float = 0.0, word_dropout: float = 0.0) -> torch.Tensor:
        """Mean cross-entropy per token of each clip's text (one per clip), EOS included: what `sft` minimises.
        Goes through `model.forward`, so wrappers that accelerate puts around it apply."""
        if len(texts) != len(waveforms):
            raise ValueError(f"one text per clip: got {len(texts)} texts for {len(waveforms)} clips")
        labels = completion_labels(self.tokenizer, texts, self.eos_token_id,
                                   self.model.config.bart["max_position_embeddings"]).to(self.device)
        decoder_input_ids = drop_words(self._decoder_inputs(labels), word_dropout, self._dropped_word_id)
        logits = self.model(*self._inputs(waveforms, sr), decoder_input_ids=decoder_input_ids, use_cache=False).logits
        return F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100,
                               label_smoothing=label_smoothing)

    @property
    def _dropped_word_id(self) -> int:
        return self.tokenizer.mask_token_id if self.tokenizer.mask_token_id is not None else self.tokenizer.unk_token_id

    def _inputs(self, waveforms: Sequence[np.ndarray], sr: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero-padded [B, samples] at the model's rate and the mask of real samples."""
        audio = [resample(np.asarray(w), sr, self.sample_rate) for w in waveforms]
        longest = max(len(a) for a in audio)
        values = torch.from_numpy(np.stack([pad_or_trim(a, longest) for a in audio]))
        lengths = torch.tensor([len(a) for a in audio])
        mask = (torch.arange(longest) < lengths.unsqueeze(1)).long()
        return values.to(self.device), mask.to(self.device)

    def _decoder_inputs(self, token_ids: torch.Tensor) -> torch.Tensor:
        """The start token, then each row's tokens but the last (-100 padding becomes the pad token)."""
        return shift_tokens_right(token_ids, self.pad_token_id, self.start_token_id)

    def _score(self, encoded: BaseModelOutput, frame_mask: torch.Tensor, token_ids: torch.Tensor,
               mask: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced log-probs and entropies at `token_ids`; the encoder ran once per clip, its output serves
        k rows each."""
        clips, rows = frame_mask.shape[0], token_ids.shape[0]
        if rows % clips:
            raise ValueError(f"{rows} token rows do not split evenly over {clips} clips")
        k = rows // clips
        token_ids, mask = token_ids.to(self.device), mask.to(self.device)
        hidden = BaseModelOutput(last_hidden_state=encoded.last_hidden_state.repeat_interleave(k, dim=0))
        logits = self.model.bart(encoder_outputs=hidden, attention_mask=frame_mask.repeat_interleave(k, dim=0),
                                 decoder_input_ids=self._decoder_inputs(token_ids), use_cache=False).logits
        return token_scores(logits, token_ids, mask, temperature)
