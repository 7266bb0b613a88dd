"""Preference data in other tools' formats: this project's JSONL, a Hugging Face table, Label Studio, FENSE.

Exports read the store and write through `atomic_write`, so a crash never leaves half a file. Imports check the
whole file before they write anything, then store its judgments in one `import_judgments` transaction: a
malformed file imports nothing, and importing a file twice stores nothing twice.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from prefcap.data.records import Caption, Clip, Judgment, read_jsonl
from prefcap.errors import PrefcapError
from prefcap.io import atomic_write
from prefcap.prefs.imports import ImportedJudgment, import_judgments
from prefcap.prefs.store import NewPair, Store

UNKNOWN_SYSTEM = "unknown"
IMPORTED_DOMAIN = "imported"
JSONL_KEYS = ("clip_id", "caption_a", "caption_b", "system_a", "system_b", "choice", "annotator", "seconds", "gold",
              "time", "pair_id")
LABEL_STUDIO_CONFIG = """<View>
  <Header value="Reference captions"/>
  <Text name="references" value="$references_text"/>
  <Header value="Which caption describes the sound better?"/>
  <Pairwise name="comparison" toName="text1,text2"/>
  <Text name="text1" value="$text1"/>
  <Text name="text2" value="$text2"/>
</View>
"""
LABEL_STUDIO_CHOICES = {"left": "a", "right": "b"}  # left is text1, which is caption a
FENSE_CHOICES = {1: "a", -1: "b", 0: "tie"}  # +1: caption_1 is better
_FENSE_FIELDS = ("references", "raw_name", "audio_id")
_FENSE_PAIR_KEY = re.compile(r"(HC|HI|HM|MM)(_\d+)?")  # a known pair key whose value is not a list is an error


class JudgmentLine(Judgment):
    """A line of `export_jsonl`; a plain `Judgment` record is one too (systems unknown, no timing, no gold)."""

    caption_a: str  # a system may write nothing, so blank captions must survive a round trip
    caption_b: str
    system_a: str = Field(default=UNKNOWN_SYSTEM, min_length=1)
    system_b: str = Field(default=UNKNOWN_SYSTEM, min_length=1)
    seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    gold: Literal["a", "b", "tie"] | None = None
    pair_id: int | None = None  # the exporting store's id: informative only, ids do not carry across stores

    @model_validator(mode="after")
    def _two_captions(self) -> JudgmentLine:
        if self.caption_a == self.caption_b and self.system_a == self.system_b:
            raise ValueError("caption_a and caption_b are the same caption")
        return self


# ---- this project's JSONL -------------------------------------------------------------------------------


def export_jsonl(store: Store, path: str | os.PathLike) -> int:
    """One line per verdict with its captions, systems and timing: the lossless exchange format between stores."""
    return _write_json_lines(path, ({**{key: row[key] for key in JSONL_KEYS}, "time": row["time"].isoformat()}
                                    for row in store.iter_judgment_rows()))


def import_jsonl(store: Store, path: str | os.PathLike, origin: str = "jsonl") -> dict[str, int]:
    """Import `export_jsonl` output or plain `Judgment` records; a bad line raises ManifestError naming file:line."""
    lines = read_jsonl(path, JudgmentLine)
    rows = [
        ImportedJudgment(
            _pair(Clip(id=line.clip_id, domain=IMPORTED_DOMAIN), line.caption_a, line.caption_b, line.system_a,
                  line.system_b, gold=line.gold),
            line.choice, line.annotator, seconds=line.seconds, time=_utc(line.time))
        for line in lines
    ]
    return import_judgments(store, rows, origin)


# ---- Hugging Face datasets ------------------------------------------------------------------------------


def export_hf(store: Store, path: str | os.PathLike, include_gold: bool = False) -> int:
    """One row per judged pair with its majority verdict, as a JSON-lines table `datasets.load_dataset("json")` reads.

    The majority is the sign of votes_a - votes_b (the FENSE convention); a zero sum is a tie, written with caption
    a as `chosen`. Gold pairs are left out unless asked for: they are quality-control items with a planted answer,
    not a sample of the systems' captions.
    """
    pairs: dict[int, dict] = {}
    votes: dict[int, Counter] = {}
    for row in store.iter_judgment_rows():
        if row["gold"] is None or include_gold:
            pairs[row["pair_id"]] = row
            votes.setdefault(row["pair_id"], Counter())[row["choice"]] += 1
    return _write_json_lines(path, (_hf_row(pairs[pair_id], votes[pair_id]) for pair_id in sorted(pairs)))


def _hf_row(pair: dict, votes: Counter) -> dict[str, Any]:
    b_wins = votes["b"] > votes["a"]
    chosen, rejected = ("b", "a") if b_wins else ("a", "b")
    return {
        "clip_id": pair["clip_id"], "chosen": pair[f"caption_{chosen}"], "rejected": pair[f"caption_{rejected}"],
        "tie": votes["a"] == votes["b"], "votes_a": votes["a"], "votes_b": votes["b"], "votes_tie": votes["tie"],
        "n_votes": votes["a"] + votes["b"] + votes["tie"], "system_chosen": pair[f"system_{chosen}"],
        "system_rejected": pair[f"system_{rejected}"], "pair_id": pair["pair_id"],
    }


# ---- Label Studio ---------------------------------------------------------------------------------------


def export_label_studio(store: Store, path: str | os.PathLike) -> int:
    """Every stored pair as a Label Studio pairwise task, and the labeling config beside it (<stem>.label_config.xml).

    Tasks are blind: no systems, no gold answer; `pair_id` in the data lets `import_label_studio` find the pair again
    (Label Studio may give tasks ids of its own).
    """
    path = Path(path)
    references: dict[str, list[str]] = {}
    tasks = []
    for pair in store.pair_rows():
        if pair["clip_id"] not in references:
            references[pair["clip_id"]] = store.references(pair["clip_id"])
        refs = references[pair["clip_id"]]
        tasks.append({"id": pair["pair_id"], "data": {
            "clip_id": pair["clip_id"], "pair_id": pair["pair_id"], "text1": pair["caption_a"],
            "text2": pair["caption_b"], "references": refs, "references_text": "\n".join(refs)}})
    with atomic_write(path) as handle:  # the tasks first: a path that cannot be written leaves nothing behind
        json.dump(tasks, handle, ensure_ascii=False, indent=1)
    with atomic_write(path.with_name(f"{path.stem}.label_config.xml")) as handle:
        handle.write(LABEL_STUDIO_CONFIG)
    return len(tasks)


def import_label_studio(store: Store, path: str | os.PathLike, origin: str = "labelstudio") -> dict[str, int]:
    """Import a Label Studio JSON export of pairwise tasks; "left" means text1 (caption a) is better.

    Cancelled annotations and ones without a pairwise result are skipped and counted. Captions keep the systems of
    the stored pair the task came from (matched by `pair_id` and texts), else the system is "unknown".
    """
    tasks = _read_json(path)
    if not isinstance(tasks, list):
        raise PrefcapError(f"{path}: expected a JSON list of Label Studio tasks")
    stored = {pair["pair_id"]: pair for pair in store.pair_rows()}
    rows, skipped = [], 0
    for index, task in enumerate(tasks):
        where = f"{path}: task [{index}]"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("clip_id", "text1", "text2")):
            raise PrefcapError(f"{where}: its data lacks clip_id, text1 or text2")
        clip_id, text1, text2 = data["clip_id"], data["text1"], data["text2"]
        if not clip_id or text1 == text2:
            raise PrefcapError(f"{where}: needs a clip_id and two different texts")
        pair_id = data.get("pair_id")
        system1, system2 = _stored_systems(stored.get(pair_id) if isinstance(pair_id, int | str) else None,
                                           clip_id, text1, text2)
        pair = _pair(Clip(id=clip_id, domain=IMPORTED_DOMAIN), text1, text2, system1, system2)
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
            raise PrefcapError(f"{where}: annotations must be a list of objects")
        for annotation in annotations:
            choice = _label_studio_choice(annotation, where)
            if choice is None:
                skipped += 1
                continue
            rows.append(ImportedJudgment(pair, choice, _label_studio_annotator(annotation, where),
                                         seconds=_label_studio_seconds(annotation, where),
                                         time=_label_studio_time(annotation, where)))
    return {**import_judgments(store, rows, origin), "skipped": skipped}


def _stored_systems(pair: dict | None, clip_id: str, text1: str, text2: str) -> tuple[str, str]:
    if pair is not None and pair["clip_id"] == clip_id:
        if (pair["caption_a"], pair["caption_b"]) == (text1, text2):
            return pair["system_a"], pair["system_b"]
        if (pair["caption_b"], pair["caption_a"]) == (text1, text2):
            return pair["system_b"], pair["system_a"]
    return UNKNOWN_SYSTEM, UNKNOWN_SYSTEM


def _label_studio_choice(annotation: dict, where: str) -> str | None:
    if annotation.get("was_cancelled"):
        return None
    results = annotation.get("result") or []
    if not isinstance(results, list):
        raise PrefcapError(f"{where}: an annotation's result must be a list, got {results!r}")
    results = [r for r in results if isinstance(r, dict) and r.get("type") == "pairwise"]
    if not results:
        return None
    value = results[0].get("value")
    selected = value.get("selected") if isinstance(value, dict) else None
    if not isinstance(selected, str) or selected not in LABEL_STUDIO_CHOICES:
        raise PrefcapError(f"{where}: a pairwise result must select 'left' or 'right', got {selected!r}")
    return LABEL_STUDIO_CHOICES[selected]


def _label_studio_annotator(annotation: dict, where: str) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    if isinstance(who, bool) or not isinstance(who, int | str) or who == "":
        raise PrefcapError(f"{where}: an annotation's completed_by must be a user id or hold an email")
    return f"labelstudio-{who}"


def _label_studio_seconds(annotation: dict, where: str) -> float | None:
    seconds = annotation.get("lead_time")
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < math.inf:
        raise PrefcapError(f"{where}: lead_time must be a number of seconds, got {seconds!r}")
    return float(seconds)


def _label_studio_time(annotation: dict, where: str) -> datetime | None:
    created = annotation.get("created_at")
    if created is None:
        return None
    try:
        return _utc(datetime.fromisoformat(created))
    except (TypeError, ValueError):
        raise PrefcapError(f"{where}: created_at must be an ISO time, got {created!r}") from None


# ---- FENSE human judgments ------------------------------------------------------------------------------


def import_fense(store: Store, path: str | os.PathLike, origin: str = "fense") -> dict[str, int]:
    """Import FENSE human judgments (Clotho-Eval, AudioCaps-Eval): the only real caption preferences available.

    One object per clip: `raw_name` (the clip id; AudioCaps-style files name some clips only by `audio_id`, a
    YouTube id, which is used when `raw_name` is missing), `references`, and pair keys (HC, HI, HM, MM_1, ...; any
    other key holding a list counts too) of `[caption_1, caption_2, ..., votes]`. Vote k becomes a judgment by `fense-k`
    (+1: caption_1, -1: caption_2, 0: tie). Both captions of a pair get the system `fense-<key>`: some clips hold
    the same two captions under two keys, judged separately, and distinct systems keep them distinct pairs (the
    category is the key without its `_<n>`). Pairs whose captions are equal after whitespace normalisation, or
    without votes, are skipped and counted. Clips are text-only; blank references are dropped.
    """
    entries = _read_json(path)
    if not isinstance(entries, list):
        raise PrefcapError(f"{path}: expected a JSON list with one object per clip (the FENSE format)")
    clips: dict[str, Clip] = {}
    references: list[Caption] = []
    rows: list[ImportedJudgment] = []
    stats = {"pairs": 0, "skipped_pairs": 0}
    for index, entry in enumerate(entries):
        where = f"{path}: clip [{index}]"
        if not isinstance(entry, dict):
            raise PrefcapError(f"{where}: expected an object, got {type(entry).__name__}")
        clip = Clip(id=_fense_clip_id(entry, where), domain="fense")
        clips[clip.id] = clip
        references += [Caption(clip_id=clip.id, text=text, source="reference")
                       for text in _fense_references(entry.get("references"), f"{where}['references']")]
        for key, item in entry.items():
            if key in _FENSE_FIELDS or item is None:
                continue
            if not isinstance(item, list):
                if _FENSE_PAIR_KEY.fullmatch(key):
                    raise PrefcapError(f"{where}[{key!r}]: a pair must be a list, got {type(item).__name__}")
                continue
            caption_1, caption_2, votes = _fense_pair(item, f"{where}[{key!r}]")
            if caption_1 == caption_2 or not votes:
                stats["skipped_pairs"] += 1
                continue
            stats["pairs"] += 1
            pair = _pair(clip, caption_1, caption_2, f"fense-{key}", f"fense-{key}", origin=f"{origin}:{key}")
            rows += [ImportedJudgment(pair, FENSE_CHOICES[vote], f"fense-{k}") for k, vote in enumerate(votes, start=1)]
    return {"clips": len(clips), **stats,
            **import_judgments(store, rows, origin, clips=clips.values(), references=references)}


IMPORTERS = {"jsonl": import_jsonl, "label-studio": import_label_studio, "fense": import_fense}
EXPORTERS = {"jsonl": export_jsonl, "hf": export_hf, "label-studio": export_label_studio}


def import_file(target: str | Path, path: str | os.PathLike, format: str) -> dict[str, int]:
    """Import `path` (in `format`: a key of IMPORTERS) into the store at `target` (a run folder, database file or
    URL), creating it when needed; a first import that fails leaves no empty store behind."""
    reader = IMPORTERS.get(format)
    if reader is None:
        raise PrefcapError(f"format {format!r} is export-only; import {', '.join(IMPORTERS)}")
    if not Path(path).is_file():
        raise PrefcapError(f"{path}: no such file")
    from prefcap.prefs.schema import store_file

    database = store_file(target)
    existed = database is None or database.exists()  # (a server database always exists)
    store = Store.at(target, create=True)
    try:
        return reader(store, path)
    except PrefcapError:
        if not existed:  # a first import that fails leaves no empty store behind
            store.delete()
        raise


def _fense_clip_id(entry: dict, where: str) -> str:
    key = "raw_name" if entry.get("raw_name") is not None or "audio_id" not in entry else "audio_id"
    name = entry.get(key)
    if not isinstance(name, str) or not name.strip():
        raise PrefcapError(f"{where}[{key!r}]: the clip's id must be a non-empty string, got {name!r}")
    return name.strip()


def _fense_references(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(text, str) for text in value):
        raise PrefcapError(f"{where}: references must be a list of strings")
    return [text for text in map(_clean, value) if text]


def _fense_pair(item: list, where: str) -> tuple[str, str, list[int]]:
    if len(item) < 3:
        raise PrefcapError(f"{where}: a pair is [caption_1, caption_2, ..., votes], got {len(item)} items")
    caption_1, caption_2, votes = item[0], item[1], item[-1]
    if not isinstance(caption_1, str) or not isinstance(caption_2, str):
        raise PrefcapError(f"{where}: the two captions must be strings, got {caption_1!r} and {caption_2!r}")
    if not isinstance(votes, list) or any(type(vote) is not int or vote not in FENSE_CHOICES for vote in votes):
        raise PrefcapError(f"{where}: votes must be a list of 1, -1 and 0, got {votes!r}")
    return _clean(caption_1), _clean(caption_2), votes


# ---- shared helpers -------------------------------------------------------------------------------------


def _pair(clip: Clip, text_a: str, text_b: str, system_a: str, system_b: str, gold: str | None = None,
          origin: str | None = None) -> NewPair:
    return NewPair(clip, Caption(clip_id=clip.id, text=text_a, source=system_a),
                   Caption(clip_id=clip.id, text=text_b, source=system_b), gold=gold, origin=origin)


def _clean(text: str) -> str:
    return " ".join(text.split())


def _utc(time: datetime) -> datetime:
    # the store keeps wall-clock times in UTC (SQLite drops the offset), so an offset is applied, not lost
    return time.astimezone(UTC) if time.tzinfo else time


def _read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise PrefcapError(f"{path}: no such file")
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PrefcapError(f"{path}: not a JSON file ({error})") from None


_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps with options builds one per call


def _write_json_lines(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    count = 0
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(_LINE_ENCODER.encode(row) + "\n")
            count += 1
    return count
