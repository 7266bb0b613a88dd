"""The `hf-speech-seq2seq` backend: any `AutoModelForSpeechSeq2Seq` (e.g. a Whisper fine-tuned for captioning).

Such models are conditioned on a fixed decoder prefix: the model's start tokens (Whisper: start-of-transcript, then
whatever language/task/no-timestamps tokens its generation config fixes) followed by a style prompt such as
`clotho > caption: `. The prefix is forced by passing it as `decoder_input_ids`, and it is never part of the returned
tokens, log-probabilities or texts.

Decoding goes through `GenerationMixin.generate` for every model, Whisper included (Whisper's own override calls it
too, after its transcription logic). In transformers 5.x that logic gets in the way of captioning: it detects the
language (a forward pass) whenever the generation config knows languages; for `num_return_sequences` it repeats the
features before the encoder and sets it to 1, so a given `decoder_input_ids` no longer matches the batch and beam
search returns n copies of the best beam; it strips the end-of-text token from the output, can retry at other
temperatures, and adds suppress-token processors. Bypassing it, the prefix is simply the `decoder_input_ids` that
generation continues from, for Whisper and generic models alike. The model's saved generation config is also kept out
of decoding (`_model_generation_config`): only `Decoding` decides how to decode, so sampling draws from exactly the
distribution whose log-probabilities are reported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import (
    AutoFeatureExtractor,
    AutoModelForSpeechSeq2Seq,
    AutoTokenizer,
    GenerationConfig,
    PretrainedConfig,
    PreTrainedModel,
    WhisperFeatureExtractor,
)
from transformers.feature_extraction_utils import FeatureExtractionMixin
from transformers.generation import GenerationMixin
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE
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
from prefcap.data.audio import resample
from prefcap.io import atomic_write

BACKEND = "hf-speech-seq2seq"


class SpeechSeq2SeqCaptioner(Captioner):
    """A speech encoder-decoder that captions audio after a fixed decoder prefix (start tokens + style prompt).

    `model`, `feature_extractor` and `tokenizer` are public so trainers can reach the parameters. Tensors in a
    `Generation` stay on the model's device.
    """

    name = BACKEND

    def __init__(self, model: PreTrainedModel, feature_extractor: FeatureExtractionMixin,
                 tokenizer: PreTrainedTokenizerBase, prompt: str | None = None,
                 start_ids: Sequence[int] | None = None) -> None:
        self.model = model
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.sample_rate = int(feature_extractor.sampling_rate)
        # Whisper's extractor pads or cuts every clip to n_samples (30 s): a longer clip would be captioned from
        # its first 30 s only, so it is refused by name instead
        samples = getattr(feature_extractor, "n_samples", None)
        self.max_seconds = samples / self.sample_rate if samples else None
        gen = model.generation_config
        self.start_ids = list(start_ids) if start_ids is not None else default_start_ids(model.config, gen)
        self.prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids if prompt else []
        self.text_prefix = completion_text_prefix(model.config, prompt)
        self.eos_token_id = _token_id(gen.eos_token_id, model.config.eos_token_id, tokenizer.eos_token_id)
        self.pad_token_id = _token_id(gen.pad_token_id, model.config.pad_token_id, tokenizer.pad_token_id,
                                      self.eos_token_id)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, prompt: str | None = None,
                        device: str | torch.device | None = None,
                        start_ids: Sequence[int] | None = None) -> SpeechSeq2SeqCaptioner:
        """Load model, feature extractor and tokenizer from a hub id or a folder. `start_ids` overrides the start
        tokens derived by `default_start_ids` (e.g. to pick a Whisper language token)."""
        device = device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForSpeechSeq2Seq.from_pretrained(name_or_path).to(device).eval()
        feature_extractor = AutoFeatureExtractor.from_pretrained(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        return cls(model, feature_extractor, tokenizer, prompt=prompt, start_ids=start_ids)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> SpeechSeq2SeqCaptioner:
        """Load a folder written by `save`, with the prompt and start tokens it was saved with."""
        meta = json.loads((Path(path) / META_FILE).read_text(encoding="utf-8"))
        if meta.get("backend") != BACKEND:
            raise ValueError(f"{path}: backend {meta.get('backend')!r} is not {BACKEND!r}")
        return cls.from_pretrained(path, prompt=meta["prompt"], device=device, start_ids=meta["start_ids"])

    def save(self, path: str | Path) -> None:
        path = Path(path)
        self.model.save_pretrained(path)
        self.feature_extractor.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        with atomic_write(path / META_FILE) as handle:
            json.dump({"backend": BACKEND, "prompt": self.prompt, "start_ids": self.start_ids}, handle, indent=2)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def prefix(self) -> torch.Tensor:
        """[1, P] the forced decoder prefix: start tokens, then the prompt's tokens."""
        return torch.tensor([self.start_ids + self.prompt_ids], dtype=torch.long, device=self.device)

    def generate(self, waveforms: Sequence[np.ndarray], sr: int, n: int = 1,
                 decoding: Decoding = Decoding()) -> Generation:  # noqa: B008 (frozen, as in base.py)
        """n captions per clip. Greedy decodes once and repeats it n times; beam returns the n best of
        `num_beams` beams (n <= num_beams); sample draws n independent captions."""
        returned = returned_per_clip(n, decoding)
        features = self._features(waveforms, sr)
        config = decoding_config(decoding, returned, decoder_start_token_id=self.start_ids[0],
                                 eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id)
        prefix = self.prefix.expand(len(waveforms), -1)
        with model_generation_config(self.model, config):
            output = GenerationMixin.generate(self.model, **features, decoder_input_ids=prefix,
                                              generation_config=config)
        token_ids = output.sequences[:, prefix.shape[1]:]
        mask, truncated = completion_mask(token_ids, self.eos_token_id)
        if decoding.mode == "beam":
            # Per-step logits follow beams that get reordered and pruned, not the returned sequences: rescore.
            with torch.no_grad():
                log_probs = self._score(features, token_ids, mask, 1.0)[0]
        else:
            temperature = decoding.temperature if decoding.mode == "sample" else 1.0
            log_probs = token_log_probs(torch.stack(output.logits, dim=1), token_ids, mask, temperature)
        return clip_major_generation(self.tokenizer, n, returned, token_ids, mask, log_probs, truncated)

    def sequence_log_probs(self, waveforms: Sequence[np.ndarray], sr: int, token_ids: torch.Tensor,
                           mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return self.sequence_scores(waveforms, sr, token_ids, mask, temperature)[0]

    def sequence_scores(self, waveforms: Sequence[np.ndarray], sr: int, token_ids: torch.Tensor,
                        mask: torch.Tensor, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        return self._score(self._features(waveforms, sr), token_ids, mask, temperature)

    def tokenize_completions(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        max_tokens = self.model.config.max_target_positions - self.prefix.shape[1]
        labels = completion_labels(self.tokenizer, self._completion_texts(texts), self.eos_token_id, max_tokens)
        token_ids, mask = completions_from_labels(labels, self.pad_token_id)
        return token_ids.to(self.device), mask.to(self.device)

    def teacher_forced_loss(self, waveforms: Sequence[np.ndarray], sr: int, texts: Sequence[str],
                            label_smoothing: float = 0.0, word_dropout: float = 0.0) -> torch.Tensor:
        """Mean cross-entropy per token of each clip's text (one per clip) after the prefix, EOS included: what
        `sft` minimises."""
        if len(texts) != len(waveforms):
            raise ValueError(f"one text per clip: got {len(texts)} texts for {len(waveforms)} clips")
        max_tokens = self.model.config.max_target_positions - self.prefix.shape[1]
        labels = completion_labels(self.tokenizer, self._completion_texts(texts), self.eos_token_id,
                                   max_tokens).to(self.device)
        prefix = self.prefix.expand(len(texts), -1)
        decoder_input_ids = torch.cat([prefix, labels[:, :-1].clamp(min=0)], dim=1)  # -100 past EOS: never read
        replacement = self.tokenizer.unk_token_id if self.tokenizer.unk_token_id is not None else self.eos_token_id
        decoder_input_ids = drop_words(decoder_input_ids, word_dropout, replacement, keep_first=prefix.shape[1])
        logits = self.model(**self._features(waveforms, sr), decoder_input_ids=decoder_input_ids,
                            use_cache=False).logits
        return F.cross_entropy(logits[:, prefix.shape[1] - 1:].float().transpose(1, 2), labels, ignore_index=-100,
                               label_smoothing=label_smoothing)

    def _completion_texts(self, texts: Sequence[str]) -> list[str]:
        """Texts as the model writes them after the prefix: `text_prefix` (Whisper's leading space) added."""
        if not self.text_prefix:
            return list(texts)
        return [self.text_prefix + text.lstrip() for text in texts]

    def _features(self, waveforms: Sequence[np.ndarray], sr: int) -> dict[str, torch.Tensor]:
        """Batched encoder inputs at the extractor's rate. Whisper's extractor pads/truncates every clip to its
        fixed window by default; other extractors are padded to the longest clip (and give an attention mask)."""
        audio = [resample(np.asarray(w), sr, self.sample_rate) for w in waveforms]
        padding = {} if isinstance(self.feature_extractor, WhisperFeatureExtractor) else {"padding": True}
        features = self.feature_extractor(audio, sampling_rate=self.sample_rate, return_tensors="pt", **padding)
        return {key: value.to(self.device, dtype=self.model.dtype if value.is_floating_point() else None)
                for key, value in features.items()}

    def _score(self, features: dict[str, torch.Tensor], token_ids: torch.Tensor, mask: torch.Tensor,
               temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced log-probs and entropies at `token_ids` after the prefix; the encoder runs once per clip."""
        clips, rows = len(next(iter(features.values()))), token_ids.shape[0]
        if rows % clips:
            raise ValueError(f"{rows} token rows do not split evenly over {clips} clips")
        k = rows // clips
        encoded = self.model.get_encoder()(**features).last_hidden_state.repeat_interleave(k, dim=0)
        encoder_mask = ({"attention_mask": features["attention_mask"].repeat_interleave(k, dim=0)}
                        if "attention_mask" in features else {})
        token_ids, mask = token_ids.to(self.device), mask.to(self.device)
        prefix = self.prefix.expand(rows, -1)
        decoder_input_ids = torch.cat([prefix, token_ids[:, :-1]], dim=1)
        logits = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=encoded), **encoder_mask,
                            decoder_input_ids=decoder_input_ids, use_cache=False).logits
        # Position P-1 (the last prefix token) predicts the first completion token.
        return token_scores(logits[:, prefix.shape[1] - 1:], token_ids, mask, temperature)


def default_start_ids(config: PretrainedConfig, generation_config: GenerationConfig) -> list[int]:
    """The decoder start token, then for Whisper the language/task/no-timestamps tokens its generation config fixes.

    Follows Whisper's own rule (`language`/`task` when set, otherwise the legacy `forced_decoder_ids`; then
    `no_timestamps_token_id`), except that a language left to detection is omitted: a caption's prefix must not
    depend on the audio.
    """
    ids = [_token_id(generation_config.decoder_start_token_id, config.decoder_start_token_id)]
    if config.model_type != "whisper":
        return ids
    language = getattr(generation_config, "language", None)
    task = getattr(generation_config, "task", None)
    if language is None and task is None:
        forced = dict(getattr(generation_config, "forced_decoder_ids", None)
                      or getattr(config, "forced_decoder_ids", None) or [])
        if sorted(forced) != list(range(1, len(forced) + 1)):
            raise ValueError(f"forced_decoder_ids must cover positions 1..k, got {sorted(forced)}")
        ids += [token for _, token in sorted(forced.items()) if token is not None]
    else:
        task_to_id = getattr(generation_config, "task_to_id", None) or {}
        if language is not None:
            ids.append(_language_id(language, getattr(generation_config, "lang_to_id", None) or {}))
        if task is not None:
            ids.append(task_to_id[task])
        elif "transcribe" in task_to_id:
            ids.append(task_to_id["transcribe"])
    no_timestamps = getattr(generation_config, "no_timestamps_token_id", None)
    if no_timestamps is not None and ids[-1] != no_timestamps:
        ids.append(no_timestamps)
    return ids


def completion_text_prefix(config: PretrainedConfig, prompt: str | None) -> str:
    """What a caption's text starts with as the model writes it after the prefix, which `generate`'s stripped texts
    lack: a space for Whisper, unless the prompt ends in whitespace.

    Whisper's byte-level BPE marks a word's leading space in the token itself, and Whisper writes a transcript
    after its start tokens with one: " Thank" (6952), not the word-internal piece "Thank" (10449). Tokenized
    without it, the texts `generate` returned would not re-tokenize to the tokens it generated, and SFT and DPO
    would train and score tokens the model never writes (tiny.en on a recorded "Thank you.": log-probability
    -0.48 with the space, -9.17 without; SFT loss 0.10 vs 1.18 per token).
    """
    if config.model_type != "whisper" or (prompt and prompt[-1].isspace()):
        return ""
    return " "


def _language_id(language: str, lang_to_id: dict[str, int]) -> int:
    """Whisper's language token id for "<|en|>", "en" or "english"."""
    language = language.lower()
    token = language if language.startswith("<|") else f"<|{TO_LANGUAGE_CODE.get(language, language)}|>"
    if token not in lang_to_id:
        raise ValueError(f"language {language!r} ({token}) is not in the generation config's lang_to_id")
    return lang_to_id[token]


def _token_id(*candidates: int | list[int] | None) -> int:
    """The first id set among `candidates` (the first of a list: decoding stops at that one only)."""
    for candidate in candidates:
        if isinstance(candidate, list | tuple):
            candidate = candidate[0] if candidate else None
        if candidate is not None:
            return int(candidate)
    raise ValueError("no token id set in the model's generation config, model config or tokenizer")
