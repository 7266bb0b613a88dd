import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prefcap.data.ingest import IngestReport, ingest
from prefcap.data.records import read_captions, read_clips
from prefcap.errors import DatasetLayoutError

SR = 8000


def tone(path: Path, seconds: float = 0.1, freq: float = 440.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SR * seconds)) / SR
    sf.write(path, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)
    return path


def nan_wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.full(800, 0.1, dtype=np.float32)
    x[5] = np.nan
    sf.write(path, x, SR, subtype="FLOAT")
    return path


def rejected_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))


HEADER = "file_name,caption_1,caption_2,caption_3,caption_4,caption_5"


@pytest.fixture
def clotho(tmp_path: Path) -> Path:
    """Two splits; one listed clip is missing, one is corrupt; captions in ISO-8859-1."""
    root = tmp_path / "data" / "CLOTHO_v2.1"
    audio = root / "clotho_audio_files"
    tone(audio / "development" / "a dog.wav", seconds=0.25)
    tone(audio / "development" / "b.wav")
    (audio / "development" / "broken.wav").write_bytes(b"RIFF not really a wav file")
    tone(audio / "validation" / "v.wav")
    tone(audio / "validation" / "unlisted.wav")
    write_csv(
        root / "clotho_csv_files" / "clotho_captions_development.csv",
        [
            HEADER,
            '"a dog.wav",A dog barks at a café.,"Dog, barking",three,four,five',
            "b.wav, naïve birds sing ,two,three,four,five",
            "broken.wav,one,two,three,four,five",
            "gone.wav,one,two,three,four,five",
        ],
        encoding="iso-8859-1",
    )
    write_csv(
        root / "clotho_csv_files" / "clotho_captions_validation.csv",
        [HEADER, "v.wav,one,two,three,four,five"],
        encoding="iso-8859-1",
    )
    return tmp_path / "data"


@pytest.mark.parametrize("via", ["parent", "itself"])
def test_clotho(clotho: Path, tmp_path: Path, via: str) -> None:
    source = clotho if via == "parent" else clotho / "CLOTHO_v2.1"
    out = tmp_path / "out"
    report = ingest(source, out)
    audio = clotho.resolve() / "CLOTHO_v2.1" / "clotho_audio_files"
    gone = str(audio / "development" / "gone.wav")
    assert report == IngestReport("clotho", 3, 15, 1, 1, (gone,))

    clips = read_clips(out / "clips.jsonl")
    assert [c.id for c in clips] == [
        "clotho/development/a dog",
        "clotho/development/b",
        "clotho/validation/v",
    ]
    first = clips[0]
    assert (first.split, first.domain, first.sample_rate) == ("development", "clotho", SR)
    assert first.duration == pytest.approx(0.25)
    assert Path(first.audio_path) == audio / "development" / "a dog.wav"

    captions = read_captions(out / "captions.jsonl")
    assert len(captions) == 15 and {c.source for c in captions} == {"reference"}
    texts = [c.text for c in captions if c.clip_id == "clotho/development/a dog"]
    assert texts == ["A dog barks at a café.", "Dog, barking", "three", "four", "five"]
    assert [c.text for c in captions if c.clip_id == "clotho/development/b"][0] == "naïve birds sing"
    assert not any(c.clip_id.endswith(("broken", "gone")) for c in captions)

    rejected = rejected_lines(out)
    assert [(Path(r["path"]).name, r["reason"]) for r in rejected] == [
        ("broken.wav", "unreadable"),
        ("gone.wav", "missing"),
    ]
    assert "clotho_captions_development.csv" in rejected[1]["message"]


def test_output_is_deterministic(clotho: Path, tmp_path: Path) -> None:
    ingest(clotho, tmp_path / "one")
    ingest(clotho, tmp_path / "two")
    for name in ("clips.jsonl", "captions.jsonl", "rejected.jsonl"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_utf8_csv_is_not_read_as_latin1(clotho: Path, tmp_path: Path) -> None:
    csv_path = clotho / "CLOTHO_v2.1" / "clotho_csv_files" / "clotho_captions_validation.csv"
    write_csv(csv_path, [HEADER, "v.wav,crème brûlée,two,three,four,five"], encoding="utf-8")
    ingest(clotho, tmp_path / "out")
    texts = {c.text for c in read_captions(tmp_path / "out" / "captions.jsonl")}
    assert "crème brûlée" in texts


def test_csv_missing_columns_raises_naming_file_and_columns(clotho: Path, tmp_path: Path) -> None:
    csv_path = clotho / "CLOTHO_v2.1" / "clotho_csv_files" / "clotho_captions_validation.csv"
    write_csv(csv_path, ["file_name,caption_1,caption_2", "v.wav,one,two"])
    with pytest.raises(DatasetLayoutError, match="caption_3, caption_4, caption_5") as raised:
        ingest(clotho, tmp_path / "out")
    assert str(csv_path.resolve()) in str(raised.value)
    assert not (tmp_path / "out" / "clips.jsonl").exists()


@pytest.fixture
def audiocaps(tmp_path: Path) -> Path:
    root = tmp_path / "AUDIOCAPS"
    audio = root / "audio_32000Hz"
    tone(audio / "val" / "abc_30.flac")
    tone(audio / "val" / "xyz_0.flac", seconds=0.2)
    tone(audio / "train" / "abc_30.flac")
    write_csv(
        root / "csv_files_v1" / "val.csv",
        [
            "audiocap_id,youtube_id,start_time,caption",
            "1,xyz,0,Rain falls",
            "2,abc,30,A man speaks",
            "3,xyz,0,Water drips on a roof",
            "4,abc,30,Someone talks",
            "5,abc,30,Speech",
            "6,missing,10,Nothing here",
        ],
    )
    write_csv(
        root / "csv_files_v1" / "train.csv",
        ["audiocap_id,youtube_id,start_time,caption", "7,abc,30,A man speaks loudly"],
    )
    return root


def test_audiocaps_groups_rows_into_clips(audiocaps: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = ingest(audiocaps, out)
    assert (report.kind, report.n_clips, report.n_captions, report.n_rejected) == ("audiocaps", 3, 6, 0)
    assert report.missing == (str(audiocaps.resolve() / "audio_32000Hz" / "val" / "missing_10.flac"),)

    clips = read_clips(out / "clips.jsonl")
    assert [(c.id, c.split) for c in clips] == [
        ("audiocaps/train/abc_30", "train"),
        ("audiocaps/val/abc_30", "val"),
        ("audiocaps/val/xyz_0", "val"),
    ]
    assert clips[2].duration == pytest.approx(0.2)
    by_clip: dict[str, list[str]] = {}
    for caption in read_captions(out / "captions.jsonl"):
        by_clip.setdefault(caption.clip_id, []).append(caption.text)
    assert by_clip == {
        "audiocaps/train/abc_30": ["A man speaks loudly"],
        "audiocaps/val/abc_30": ["A man speaks", "Someone talks", "Speech"],
        "audiocaps/val/xyz_0": ["Rain falls", "Water drips on a roof"],
    }
    assert [r["reason"] for r in rejected_lines(out)] == ["missing"]


def test_audiocaps_bad_columns(audiocaps: Path, tmp_path: Path) -> None:
    write_csv(audiocaps / "csv_files_v1" / "train.csv", ["youtube_id,start,caption", "abc,30,x"])
    with pytest.raises(DatasetLayoutError, match=r"train\.csv: missing column\(s\) audiocap_id, start_time"):
        ingest(audiocaps, tmp_path / "out", kind="audiocaps")


def test_folder_skips_bad_files_and_lists_them(tmp_path: Path) -> None:
    src = tmp_path / "sounds"
    tone(src / "a.wav")
    tone(src / "sub" / "b.flac", seconds=0.3)
    tone(src / "sub" / "deeper" / "c.ogg")
    (src / "corrupt.wav").write_bytes(b"\x00\x01garbage" * 50)
    (src / "empty.flac").write_bytes(b"")
    nan_wav(src / "sub" / "nan.wav")
    (src / "notes.txt").write_text("not audio")
    out = tmp_path / "out"

    report = ingest(src, out)
    assert report == IngestReport("folder", 3, 0, 3, 0, ())
    clips = read_clips(out / "clips.jsonl")
    assert [c.id for c in clips] == ["a", "sub/b", "sub/deeper/c"]
    assert {(c.split, c.domain) for c in clips} == {("all", "folder")}
    assert clips[1].duration == pytest.approx(0.3)
    assert (out / "captions.jsonl").read_text() == ""
    assert {(Path(r["path"]).name, r["reason"]) for r in rejected_lines(out)} == {
        ("corrupt.wav", "unreadable"),
        ("empty.flac", "empty"),
        ("nan.wav", "non_finite"),
    }


def test_folder_rejects_a_second_file_with_the_same_id(tmp_path: Path) -> None:
    tone(tmp_path / "src" / "x.flac")
    tone(tmp_path / "src" / "x.wav")
    report = ingest(tmp_path / "src", tmp_path / "out", kind="folder")
    assert (report.n_clips, report.n_rejected) == (1, 1)
    assert read_clips(tmp_path / "out" / "clips.jsonl")[0].audio_path.endswith("x.flac")
    assert [(Path(r["path"]).name, r["reason"]) for r in rejected_lines(tmp_path / "out")] == [
        ("x.wav", "duplicate_id")
    ]


def test_rejected_jsonl_is_written_even_when_empty(tmp_path: Path) -> None:
    tone(tmp_path / "src" / "a.wav")
    ingest(tmp_path / "src", tmp_path / "out")
    assert (tmp_path / "out" / "rejected.jsonl").read_text() == ""


def test_unrecognised_folder_raises_naming_the_layouts(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "readme.txt").write_text("hello")
    with pytest.raises(DatasetLayoutError, match="CLOTHO_v2.1.*AUDIOCAPS.*audio files"):
        ingest(tmp_path / "src", tmp_path / "out")
    with pytest.raises(DatasetLayoutError, match="no CLOTHO_v2.1 folder"):
        ingest(tmp_path / "src", tmp_path / "out", kind="clotho")
    with pytest.raises(DatasetLayoutError, match="no such folder"):
        ingest(tmp_path / "nowhere", tmp_path / "out")


def test_auto_refuses_to_guess_between_two_datasets(clotho: Path, tmp_path: Path) -> None:
    tone(clotho / "AUDIOCAPS" / "audio_32000Hz" / "val" / "abc_30.flac")
    write_csv(
        clotho / "AUDIOCAPS" / "csv_files_v1" / "val.csv", ["audiocap_id,youtube_id,start_time,caption"]
    )
    with pytest.raises(DatasetLayoutError, match="both"):
        ingest(clotho, tmp_path / "out")
    assert ingest(clotho, tmp_path / "out", kind="clotho").kind == "clotho"


def test_a_row_shorter_than_the_header_is_named_by_line(audiocaps: Path, tmp_path: Path) -> None:
    """Found by the fuzz suite: a short row used to end in AttributeError on None."""
    write_csv(audiocaps / "csv_files_v1" / "val.csv", ["audiocap_id,youtube_id,start_time,caption", "1,xyz,0,Rain",
                                                        "2,abc"])
    with pytest.raises(DatasetLayoutError, match=r"val.csv:3: the row has no value for start_time, caption"):
        ingest(audiocaps, tmp_path / "out")
