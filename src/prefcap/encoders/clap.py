"""CLAP through transformers: the pretrained LAION `ClapModel` checkpoints and the small offline CLAP alike.

Embeddings must be deterministic, so the processor's random crop (`rand_trunc`) must never fire: audio
is cut into fixed, non-overlapping windows of the model's input length (the last one zero-padded to
the full length by `chunk`), each window is embedded, and a clip's embedding is the normalised mean
over its windows. The extractor does not resample (a wrong rate passes silently), so resampling to its
rate happens here.

The log-mel itself is `ClapLogMel`: `ClapFeatureExtractor`'s maths in torch, on the encoder's device
(the numpy extractor loops over frames on the CPU and was most of an embedding call's time on a GPU).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoFeatureExtractor, AutoModel, AutoTokenizer, PreTrainedModel
from transformers.audio_utils import window_function

from prefcap.data.audio import chunk, resample
from prefcap.encoders import offline_clap  # noqa: F401  (registers the offline CLAP with AutoModel)
from prefcap.encoders.base import AudioTextEncoder
from prefcap.errors import PrefcapError
from prefcap.io import file_sha256, loading, verify_checksums, write_checksums

DEFAULT_CLAP = "laion/clap-htsat-unfused"


def _pooled(output) -> torch.Tensor:
    """transformers 5 returns an output object (pooler_output); 4.x returned the projected tensor."""
    return output.pooler_output if hasattr(output, "pooler_output") else output


class ClapLogMel:
    """`ClapFeatureExtractor`'s log-mel input in torch, on `device`, for windows of at most its `nb_max_samples`.

    The same steps as `transformers.audio_utils.spectrogram` with the extractor's settings: a periodic Hann
    window of `fft_window_size`, frames `hop_length` apart centred by reflect padding, power 2, the
    extractor's own filter bank (`mel_filters_slaney` for `rand_trunc`, the HTK `mel_filters` for `fusion`),
    floored at 1e-10 and in dB (`power_to_db`, reference 1; the extractor passes no `top_db` to it), in float64
    like the extractor and returned as float32. A shorter window is `repeatpad`ded as the extractor does (tiled
    whole, then zeros); `fusion` stacks the log-mel four times, as the extractor does for audio that fits one
    window. A longer window is refused: the extractor would take a random crop (`rand_trunc`) or random crops
    of the whole (`fusion`), and embeddings must be deterministic.
    """

    def __init__(self, extractor, truncation: str, device: torch.device | str = "cpu", group: int | None = None):
        if truncation not in ("rand_trunc", "fusion"):
            raise PrefcapError(f"unknown CLAP truncation {truncation!r}; expected rand_trunc or fusion")
        self.device = torch.device(device)
        # float64 as the extractor: in float32 the FFT's rounding reaches the deep valleys of tonal audio (0.5 dB
        # measured on a chirp). A device without float64 (MPS) has the CPU compute and takes the result.
        self.compute = torch.device("cpu") if self.device.type == "mps" else self.device
        self.n_fft, self.hop = int(extractor.fft_window_size), int(extractor.hop_length)
        self.length = int(extractor.nb_max_samples)
        self.copies = 4 if truncation == "fusion" else 1
        filters = extractor.mel_filters if truncation == "fusion" else extractor.mel_filters_slaney
        self.filters = torch.from_numpy(np.asarray(filters).T.copy()).to(self.compute)  # [mels, bins] float64
        self.window = torch.from_numpy(window_function(self.n_fft, "hann")).to(self.compute)  # float64
        # windows per STFT call: on a CPU about half a million samples (one 10 s 48 kHz window), whose float64
        # frames stay in cache -- twice as fast there as larger calls; on a GPU 16 such windows
        budget = 1 << (19 if self.compute.type == "cpu" else 23)
        self.group = group or max(1, budget // self.length)

    def __call__(self, windows: Sequence[np.ndarray]) -> torch.Tensor:
        """[n, 1 (4 for fusion), frames, mels] float32 on the device."""
        if not windows:
            raise ValueError("no audio windows to featurise")
        batch = torch.from_numpy(np.stack([self._repeatpad(np.asarray(w, dtype=np.float32)) for w in windows]))
        batch = batch.to(self.compute)  # float32 over the bus; widened there (exact, as the extractor's np.float64)
        out = torch.cat([self._log_mel(batch[i : i + self.group].double()) for i in range(0, len(batch), self.group)])
        return out.unsqueeze(1).expand(-1, self.copies, -1, -1).contiguous().to(self.device)

    def _repeatpad(self, waveform: np.ndarray) -> np.ndarray:
        if waveform.ndim != 1:
            raise ValueError(f"a CLAP window must be 1-D mono audio, got shape {waveform.shape}")
        if len(waveform) > self.length:
            raise ValueError(f"a CLAP window of {len(waveform)} samples is longer than the model's "
                             f"{self.length}: cut audio into windows first (ClapEncoder.audio_features does)")
        if 0 < len(waveform) < self.length:
            waveform = np.tile(waveform, self.length // len(waveform))
        return np.pad(waveform, (0, self.length - len(waveform)))

    def _log_mel(self, batch: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(batch, self.n_fft, hop_length=self.hop, window=self.window, center=True,
                          pad_mode="reflect", onesided=True, return_complex=True)  # [n, bins, frames]
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.filters, power).clamp(min=1e-10)  # mel_floor, then power_to_db's min_value
        return (10.0 * torch.log10(mel)).transpose(1, 2).float()  # [n, frames, mels]


class ClapEncoder(AudioTextEncoder):
    def __init__(self, model: PreTrainedModel, feature_extractor, tokenizer, name: str, device: str | None = None,
                 batch_size: int = 32, max_text_tokens: int = 64):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_text_tokens = min(max_text_tokens, _text_positions(model.config))
        self.sample_rate = int(feature_extractor.sampling_rate)
        self.window = int(feature_extractor.nb_max_samples)
        self.dim = int(model.config.projection_dim)
        self.truncation = "fusion" if model.config.audio_config.enable_fusion else "rand_trunc"
        self.log_mel = ClapLogMel(feature_extractor, self.truncation, self.device)
        preprocessing = json.dumps(
            {"extractor": feature_extractor.to_dict(), "window": self.window, "projection": self.dim}, sort_keys=True,
            default=str,
        )
        weights = hashlib.sha256(preprocessing.encode())
        self.id = f"clap-{name.strip('/').replace('/', '--')}-{weights.hexdigest()[:10]}"

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = DEFAULT_CLAP, device: str | None = None,
                        **kwargs) -> ClapEncoder:
        """A hub id (e.g. laion/clap-htsat-unfused) or a local folder saved by `save`/`encoder-train`."""
        source = name = str(name_or_path)
        if Path(source).is_dir():  # identify a local model by its weights, not by where it lies
            verified = verify_checksums(source)  # the weights' sha256 too, when the folder records it
            weights = next(Path(source).glob("*.safetensors"), None)
            digest = (verified.get(weights.name) or file_sha256(weights))[:12] if weights else "unsaved"
            name = f"local-{digest}"
        with loading(f"CLAP {source}"):
            model = AutoModel.from_pretrained(source)
            extractor, tokenizer = AutoFeatureExtractor.from_pretrained(source), AutoTokenizer.from_pretrained(source)
        if not hasattr(model, "get_audio_features") or not hasattr(model, "get_text_features"):
            raise PrefcapError(f"{source}: a {type(model).__name__}, not a CLAP (it has no audio and text towers)")
        return cls(model, extractor, tokenizer, name, device=device, **kwargs)

    def save(self, path: str | Path) -> None:
        self.model.save_pretrained(path)
        self.feature_extractor.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        write_checksums(path)

    def audio_features(self, waveforms: Sequence[np.ndarray], sr: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_features for every window, index of the clip each window belongs to), both on the device.

        Every window is exactly the model's input length (`chunk` zero-pads the last), so the extractor's
        padding and truncation never apply; the features are `feature_extractor`'s, computed by `log_mel`."""
        windows, owners = [], []
        for index, waveform in enumerate(waveforms):
            for window in chunk(resample(waveform, sr, self.sample_rate), self.window):
                windows.append(window)
                owners.append(index)
        return self.log_mel(windows), torch.tensor(owners, device=self.device)

    def embed_features(self, features: torch.Tensor, owners: torch.Tensor, n_clips: int) -> torch.Tensor:
        """Mean of the window embeddings of each clip, normalised. Keeps gradients (used in training)."""
        window_embeddings = F.normalize(_pooled(self.model.get_audio_features(input_features=features)), dim=-1)
        sums = torch.zeros(n_clips, window_embeddings.shape[1], device=window_embeddings.device)
        sums = sums.index_add(0, owners.to(window_embeddings.device), window_embeddings)
        return F.normalize(sums, dim=-1)

    @torch.no_grad()
    def embed_audio(self, waveforms: Sequence[np.ndarray], sr: int) -> torch.Tensor:
        rows = []
        for start in range(0, len(waveforms), self.batch_size):
            batch = waveforms[start : start + self.batch_size]
            features, owners = self.audio_features(batch, sr)
            rows.append(self.embed_features(features, owners, len(batch)).cpu())
        return torch.cat(rows) if rows else torch.zeros(0, self.dim)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return clap_tokens(self.tokenizer, texts, self.max_text_tokens)

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        rows = []
        for start in range(0, len(texts), self.batch_size):
            tokens = {k: v.to(self.device) for k, v in self.tokenize(texts[start : start + self.batch_size]).items()}
            rows.append(F.normalize(_pooled(self.model.get_text_features(**tokens)), dim=-1).cpu())
        return torch.cat(rows) if rows else torch.zeros(0, self.dim)


def clap_tokens(tokenizer, texts: Sequence[str], max_tokens: int) -> dict[str, torch.Tensor]:
    """What a CLAP's text tower reads: padded, truncated ids and their attention mask."""
    tokens = tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}


def _text_positions(config) -> int:
    """How many tokens the text tower can embed: RoBERTa-style positions start after the padding index, so a
    longer caption would index past the position table instead of being truncated."""
    text = getattr(config, "text_config", None)
    positions = getattr(text, "max_position_embeddings", None)
    if positions is None:
        return 1 << 30
    return positions - (getattr(text, "pad_token_id", None) or 0) - 1
