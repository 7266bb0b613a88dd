"""Property tests of every importer and of the audio loader: any input ends in a valid result or a PrefcapError
that names the problem, never another exception, and a refused import writes nothing. Bounded (a few dozen
examples each) so that `make test` stays fast; raise `max_examples` locally to dig deeper."""

import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefcap.data.audio import load_audio
from prefcap.data.ingest import ingest
from prefcap.data.records import read_captions, read_clips
from prefcap.errors import PrefcapError
from prefcap.prefs.formats import import_fense, import_jsonl, import_label_studio
from prefcap.prefs.store import Store

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON values of every kind, small
_scalar = st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=12)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                           max_size=4), max_leaves=12)
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


def _judgment() -> st.SearchStrategy[dict]:
    """A valid export_jsonl line, then perhaps a field dropped, retyped or replaced by junk."""
    valid = st.fixed_dictionaries({
        "clip_id": _text, "caption_a": _text, "caption_b": _text, "choice": st.sampled_from(["a", "b", "tie", "x"]),
        "annotator": _text, "system_a": _text, "system_b": _text,
    }, optional={"time": st.sampled_from(["2026-11-26T10:00:00", "yesterday", "2026-11-26T10:00:00+05:00"]),
                 "seconds": st.floats(allow_nan=True) | st.just(-1.0), "gold": st.sampled_from(["a", "b", None, 3])})
    return st.tuples(valid, st.sampled_from(["keep", "drop", "junk"]), st.sampled_from(
        ["clip_id", "caption_a", "choice", "annotator"]), _json).map(_mutate)


def _mutate(args: tuple) -> dict:
    line, how, key, junk = args
    line = dict(line)
    if how == "drop":
        line.pop(key)
    elif how == "junk":
        line[key] = junk
    return line


def _store(folder: Path) -> Store:
    return Store(folder / "prefs.sqlite")


def _check_import(importer, payload: bytes) -> None:
    """Import `payload` into a fresh store: success, or PrefcapError with the store left empty."""
    folder = Path(tempfile.mkdtemp())
    try:
        (folder / "in").write_bytes(payload)
        store = _store(folder)
        try:
            stats = importer(store, folder / "in")
            assert isinstance(stats, dict)
        except PrefcapError as error:
            assert str(error)
            assert store.counts()["judgments"] == 0 and store.counts()["pairs"] == 0
        finally:
            store.close()
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(lines=st.lists(_judgment() | _json, max_size=5), raw=st.binary(max_size=40))
def test_jsonl_import_never_crashes(lines, raw):
    text = "\n".join(json.dumps(line) for line in lines).encode()
    _check_import(import_jsonl, text)
    _check_import(import_jsonl, text + b"\n" + raw)


def _fense_entry() -> st.SearchStrategy:
    pair = st.lists(_text, min_size=2, max_size=2).flatmap(
        lambda texts: st.tuples(st.just(texts), st.lists(st.integers(-2, 2), max_size=5) | _json))
    valid = st.fixed_dictionaries({"raw_name": _text, "references": st.lists(_text, max_size=5) | _json,
                                   "HC": pair.map(lambda p: [*p[0], p[1]])},
                                  optional={"MM_1": st.lists(_json, max_size=4), "HI": _json})
    return valid | _json


@FUZZ
@given(entries=st.lists(_fense_entry(), max_size=4), raw=st.binary(max_size=40))
def test_fense_import_never_crashes(entries, raw):
    _check_import(import_fense, json.dumps(entries).encode())
    _check_import(import_fense, raw)


def _label_studio_task() -> st.SearchStrategy:
    annotation = st.fixed_dictionaries({}, optional={
        "result": st.lists(st.fixed_dictionaries({"value": st.fixed_dictionaries(
            {"selected": st.sampled_from(["left", "right", "tie", "up"]) | _json})}) | _json, max_size=2),
        "completed_by": _json, "lead_time": _json, "created_at": _json, "was_cancelled": _json})
    data = st.fixed_dictionaries({"clip_id": _text, "text1": _text, "text2": _text}, optional={"audio": _json})
    return st.fixed_dictionaries({"data": data | _json}, optional={"annotations": st.lists(annotation, max_size=2)
                                                                   | _json}) | _json


@FUZZ
@given(tasks=st.lists(_label_studio_task(), max_size=4) | _json)
def test_label_studio_import_never_crashes(tasks):
    _check_import(import_label_studio, json.dumps(tasks).encode())


@FUZZ
@given(records=st.lists(st.dictionaries(st.sampled_from(["id", "audio_path", "split", "duration", "sample_rate",
                                                         "clip_id", "text", "source", "metadata"]), _json,
                                        max_size=6), max_size=4), raw=st.binary(max_size=30))
def test_manifests_never_crash(tmp_path_factory, records, raw):
    path = tmp_path_factory.mktemp("manifest") / "clips.jsonl"
    path.write_bytes("\n".join(json.dumps(r) for r in records).encode() + raw)
    for reader in (read_clips, read_captions):
        try:
            reader(path)
        except PrefcapError as error:
            assert path.name in str(error)


def _wav_bytes(seconds: float, channels: int, subtype: str) -> bytes:
    buffer = io.BytesIO()
    frames = int(8000 * seconds)
    data = np.random.default_rng(0).uniform(-0.5, 0.5, (frames, channels)).astype(np.float32)
    sf.write(buffer, data, 8000, format="WAV", subtype=subtype)
    return buffer.getvalue()


@FUZZ
@given(seconds=st.floats(0, 0.2), channels=st.integers(1, 3), subtype=st.sampled_from(["PCM_16", "FLOAT", "PCM_U8"]),
       cut=st.integers(0, 4000), flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=4),
       raw=st.binary(max_size=64))
def test_audio_loader_gives_finite_audio_or_an_audio_error(tmp_path_factory, seconds, channels, subtype, cut, flips,
                                                            raw):
    data = bytearray(_wav_bytes(seconds, channels, subtype))
    for offset, value in flips:
        if offset < len(data):
            data[offset] = value
    folder = tmp_path_factory.mktemp("audio")
    for name, payload in (("damaged.wav", bytes(data[: max(0, len(data) - cut)])), ("raw.wav", raw)):
        (folder / name).write_bytes(payload)
        try:
            audio = load_audio(folder / name, target_sr=16000)
        except PrefcapError as error:
            assert name in str(error)
        else:
            assert audio.dtype == np.float32 and audio.ndim == 1 and np.isfinite(audio).all()


_cells = st.lists(_text.filter(lambda t: "\n" not in t and "\r" not in t), max_size=6)


def _csv(header: str, rows: list[list[str]], raw: bytes) -> bytes:
    return "\n".join([header, *(",".join(json.dumps(cell) for cell in row) for row in rows)]).encode() + raw


def _ingest_cleanly(root: Path) -> None:
    try:
        ingest(root, root / "out")
    except PrefcapError as error:
        assert str(error)
    else:
        assert (root / "out" / "clips.jsonl").is_file()


@FUZZ
@given(header=st.sampled_from(["file_name,caption_1,caption_2,caption_3,caption_4,caption_5", "file_name,caption_1",
                               "youtube_id,caption", ""]),
       rows=st.lists(_cells, max_size=4), raw=st.binary(max_size=30))
def test_clotho_layout_ingest_never_crashes(tmp_path_factory, header, rows, raw):
    root = tmp_path_factory.mktemp("clotho")
    base = root / "CLOTHO_v2.1"
    (base / "clotho_audio_files" / "development").mkdir(parents=True)
    (base / "clotho_audio_files" / "development" / "a.wav").write_bytes(_wav_bytes(0.05, 1, "PCM_16"))
    (base / "clotho_csv_files").mkdir()
    (base / "clotho_csv_files" / "clotho_captions_development.csv").write_bytes(_csv(header, rows, raw))
    _ingest_cleanly(root)


@FUZZ
@given(header=st.sampled_from(["audiocap_id,youtube_id,start_time,caption", "youtube_id,caption", ""]),
       rows=st.lists(_cells, max_size=4), raw=st.binary(max_size=30))
def test_audiocaps_layout_ingest_never_crashes(tmp_path_factory, header, rows, raw):
    root = tmp_path_factory.mktemp("audiocaps")
    base = root / "AUDIOCAPS"
    (base / "audio_32000Hz" / "val").mkdir(parents=True)
    (base / "audio_32000Hz" / "val" / "abc_30.flac").write_bytes(_wav_bytes(0.05, 1, "PCM_16"))  # not a FLAC
    (base / "csv_files_v1").mkdir()
    (base / "csv_files_v1" / "val.csv").write_bytes(_csv(header, rows, raw))
    _ingest_cleanly(root)


@FUZZ
@given(names=st.lists(st.text(st.characters(whitelist_categories=("Ll", "Nd")), min_size=1, max_size=8), max_size=4),
       suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".WAV"]), payloads=st.lists(st.binary(max_size=64),
                                                                                        max_size=4))
def test_plain_folder_ingest_never_crashes(tmp_path_factory, names, suffix, payloads):
    root = tmp_path_factory.mktemp("folder")
    for k, name in enumerate(names):
        payload = payloads[k] if k < len(payloads) else _wav_bytes(0.05, 1, "PCM_16")
        (root / f"{name}{suffix}").write_bytes(payload)
    _ingest_cleanly(root)


@pytest.mark.parametrize("payload", [b"", b"\x00" * 10, b"[]", b"{}", b"null", "é".encode("latin-1")])
def test_empty_and_odd_files_are_refused_or_imported_cleanly(payload):
    for importer in (import_jsonl, import_fense, import_label_studio):
        _check_import(importer, payload)
