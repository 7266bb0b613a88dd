"""The judgment store: clips, captions, pairs, annotators, assignments and judgments in one database.

SQLite by default (a file in the run directory, WAL, a busy timeout, `synchronous=FULL` so an acknowledged
judgment survives a killed server), or any SQLAlchemy URL for a team server. Every public write is one
transaction; a unique index makes a second judgment of the same assignment impossible, whatever the caller.
The web app, the simulated annotators and the importers all go through this class.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, aliased, mapped_column, sessionmaker

from prefcap.data.records import Caption, Clip
from prefcap.errors import PrefcapError

DEFAULT_FILE = "prefs.sqlite"
ANSWERS = ("left", "right", "tie", "skip")  # what an annotator can answer


class StoreError(PrefcapError):
    """A request the store refuses; `status` is the HTTP status the web app answers with."""

    status = 400


class NotFound(StoreError):
    status = 404


class AlreadyJudged(StoreError):
    status = 409


def _now() -> datetime:
    return datetime.now(UTC)


def _hash_token(token: str) -> str:
    # tokens are long random strings, so a plain digest is enough (no brute-forceable low-entropy secret)
    return hashlib.sha256(token.encode()).hexdigest()


class _Base(DeclarativeBase):
    pass


class ClipRow(_Base):
    __tablename__ = "clips"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    audio_path: Mapped[str | None] = mapped_column(Text)
    duration: Mapped[float | None] = mapped_column(Float)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String, default="all")
    domain: Mapped[str] = mapped_column(String, default="unknown")
    metadata_json: Mapped[str] = mapped_column(Text, default="{}")


class CaptionRow(_Base):
    __tablename__ = "captions"
    __table_args__ = (UniqueConstraint("clip_id", "system", "text"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clips.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    system: Mapped[str] = mapped_column(String)  # "reference" or the system that wrote it
    decoding_json: Mapped[str | None] = mapped_column(Text)  # the decoding settings that produced it


class PairRow(_Base):
    __tablename__ = "pairs"
    __table_args__ = (
        UniqueConstraint("caption_a_id", "caption_b_id"),
        CheckConstraint("caption_a_id != caption_b_id", name="two_different_captions"),
        CheckConstraint("gold IS NULL OR gold IN ('a', 'b', 'tie')", name="gold_choice"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clips.id"), index=True)
    caption_a_id: Mapped[int] = mapped_column(ForeignKey("captions.id"))
    caption_b_id: Mapped[int] = mapped_column(ForeignKey("captions.id"))
    gold: Mapped[str | None] = mapped_column(String)  # the known answer of a quality-control item
    origin: Mapped[str] = mapped_column(String, default="")  # the strategy or import that made it
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class AnnotatorRow(_Base):
    __tablename__ = "annotators"
    __table_args__ = (CheckConstraint("role IN ('annotator', 'admin')", name="known_role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    token_hash: Mapped[str] = mapped_column(String, unique=True)
    role: Mapped[str] = mapped_column(String, default="annotator")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SessionRow(_Base):
    __tablename__ = "sessions"
    id_hash: Mapped[str] = mapped_column(String, primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class AssignmentRow(_Base):
    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("pair_id", "annotator_id"),
        CheckConstraint("status IN ('open', 'done')", name="known_status"),
        Index("ix_queue", "annotator_id", "status", "position"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    a_on_left: Mapped[bool] = mapped_column(Boolean)  # the blind layout, fixed when assigned
    position: Mapped[int] = mapped_column(Integer)  # queue order; a skip moves the item to the end
    status: Mapped[str] = mapped_column(String, default="open")


class JudgmentRow(_Base):
    __tablename__ = "judgments"
    __table_args__ = (
        CheckConstraint("choice IN ('a', 'b', 'tie', 'skip')", name="known_choice"),
        # at most one real verdict per assignment (skips are logged, any number of them)
        Index(
            "uq_one_verdict_per_assignment", "assignment_id", unique=True,
            sqlite_where=text("choice != 'skip'"), postgresql_where=text("choice != 'skip'"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), index=True)
    choice: Mapped[str] = mapped_column(String)
    a_on_left: Mapped[bool] = mapped_column(Boolean)  # which side caption a was shown on
    seconds: Mapped[float | None] = mapped_column(Float)  # time the annotator took
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SchemaVersionRow(_Base):
    """One row: the version of these tables, so that a store written by another prefcap is upgraded or refused."""

    __tablename__ = "prefcap_schema"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)


# Bump SCHEMA_VERSION whenever the tables change, and add the step that upgrades the previous version's store.
SCHEMA_VERSION = 1


def _upgrade_unversioned(connection, target) -> None:
    """0 -> 1: stores written before the version table (prefcap up to 2026-11-30) have today's tables and columns;
    check that, since a store of some other layout must be refused rather than half-used."""
    inspector = inspect(connection)
    for table in _Base.metadata.sorted_tables:
        if table.name == SchemaVersionRow.__tablename__:
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        if missing := [column.name for column in table.columns if column.name not in present]:
            raise PrefcapError(f"{target}: an unversioned judgment store whose table {table.name!r} lacks "
                               f"{', '.join(missing)}: not one this prefcap can upgrade")


UPGRADES = {0: _upgrade_unversioned}  # version -> the step to version + 1


def _prepare_schema(engine, target: str | Path) -> None:
    """Create a new store's tables, upgrade an older prefcap's, refuse a newer one's: in one transaction, which
    on PostgreSQL holds an advisory lock so that two processes opening a new store do not both create it."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(20261201)"))
        tables = set(inspect(connection).get_table_names())
        if SchemaVersionRow.__tablename__ in tables:
            version = connection.scalar(select(func.max(SchemaVersionRow.version)))
        else:
            version = 0 if tables & set(_Base.metadata.tables) else None  # None: a new store
        if version == SCHEMA_VERSION:
            return
        if version is not None and version > SCHEMA_VERSION:
            raise PrefcapError(f"{target}: a judgment store of schema version {version}, written by a newer prefcap; "
                               f"this one reads versions up to {SCHEMA_VERSION}: upgrade prefcap")
        _Base.metadata.create_all(connection)
        for step in range(SCHEMA_VERSION if version is None else version, SCHEMA_VERSION):
            UPGRADES[step](connection, target)
        connection.execute(delete(SchemaVersionRow))
        connection.execute(insert(SchemaVersionRow).values(version=SCHEMA_VERSION))


@dataclass(frozen=True)
class Task:
    """What an annotator sees next: blind, so no system names and no caption ids."""

    assignment_id: int
    clip_id: str
    has_audio: bool
    references: list[str]
    left: str
    right: str
    done: int
    assigned: int


@dataclass(frozen=True)
class Annotator:
    id: int
    name: str
    role: str


def _url(target: str | Path) -> str:
    text = str(target)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).resolve()}"


def _sqlite_file(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def _sqlite_pragmas(engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # writers take the write lock up front: two deferred transactions upgrading at once would fail with
        # "locked"; a long read (an export) stays deferred, so annotators keep writing while it runs (WAL)
        reading = connection.get_execution_options().get("read_only", False)
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


def store_file(target: str | Path) -> Path | None:
    """The database file `Store.at(target)` opens; None for a server URL."""
    if "://" in str(target):
        return None
    path = Path(str(target))
    return path / DEFAULT_FILE if path.is_dir() or not path.suffix else path


def _check_sqlite_store(path: Path, target: str | Path) -> None:
    """Refuse a file that is not SQLite, or a SQLite database of another application, without changing it."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        raise PrefcapError(f"{target}: cannot open it as a judgment store ({error})") from None
    if tables and not tables & set(_Base.metadata.tables):
        raise PrefcapError(f"{target}: a database of something else (tables: {', '.join(sorted(tables)[:5])}); "
                           "a judgment store needs its own file")


class Store:
    """The project's preference database."""

    def __init__(self, target: str | Path, create: bool = True):
        url = _url(target)
        path = _sqlite_file(url)
        if path is not None and not create and not path.is_file():
            raise PrefcapError(f"{target}: no such judgment store (create one with 'prefcap pairs' or an import)")
        if path is not None:
            if path.is_file():
                _check_sqlite_store(path, target)  # read-only, before the pragmas below switch it to WAL
            path.parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        try:
            self.engine = create_engine(url)
            if self.engine.dialect.name == "sqlite":
                _sqlite_pragmas(self.engine)
            _prepare_schema(self.engine, target)
        except (SQLAlchemyError, ImportError) as error:
            raise PrefcapError(f"{target}: cannot open it as a judgment store ({str(error).splitlines()[0]})") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def at(cls, target: str | Path, create: bool = True) -> Store:
        """A store from a URL, a database file, or a run folder (which holds prefs.sqlite): a path that is a
        folder or has no suffix is a run folder."""
        return cls(store_file(target) or str(target), create=create)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def path(self) -> Path | None:
        """The database file of a SQLite store (None for a server URL)."""
        return _sqlite_file(self.url)

    def delete(self) -> None:
        """Close and remove a SQLite store's files: what a failed first import leaves behind is no store at all."""
        self.close()
        if self.path is not None:
            for suffix in ("", "-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # ---- clips and captions -------------------------------------------------------------------------

    def add_clips(self, clips: Iterable[Clip]) -> int:
        """Add clips not yet stored (by id); returns how many were new."""
        with self.transaction() as session:
            return sum(_ensure_clip(session, clip) for clip in clips)

    def clip(self, clip_id: str) -> Clip:
        with self.transaction() as session:
            row = session.get(ClipRow, clip_id)
            if row is None:
                raise NotFound(f"no clip {clip_id!r}")
            return _clip_record(row)

    def clips(self) -> list[Clip]:
        with self.transaction() as session:
            return [_clip_record(row) for row in session.scalars(select(ClipRow).order_by(ClipRow.id))]

    def references(self, clip_id: str) -> list[str]:
        with self.transaction() as session:
            return _references(session, clip_id)

    def add_captions(self, captions: Iterable[Caption], decoding: dict | None = None) -> int:
        """Add captions (references or a system's) of stored clips; exact duplicates are kept once."""
        with self.transaction() as session:
            before = session.scalar(select(func.count(CaptionRow.id)))
            for caption in captions:
                _ensure_caption(session, caption.clip_id, caption.text, caption.source, decoding)
            return session.scalar(select(func.count(CaptionRow.id))) - before

    # ---- pairs --------------------------------------------------------------------------------------

    def add_pairs(self, pairs: Iterable[NewPair], origin: str) -> int:
        """Store candidate pairs; a pair already stored (in either order) is not added twice."""
        added = 0
        with self.transaction() as session:
            for pair in pairs:
                added += _ensure_pair(session, pair, origin)[1]
        return added

    def pair_count(self, gold: bool | None = None) -> int:
        query = select(func.count(PairRow.id))
        if gold is not None:
            query = query.where(PairRow.gold.is_not(None) if gold else PairRow.gold.is_(None))
        with self.transaction() as session:
            return session.scalar(query)

    # ---- annotators and sessions -------------------------------------------------------------------

    def add_annotator(self, name: str, role: str = "annotator") -> str:
        """Register an annotator (or an admin) and return their token; only its hash is stored."""
        if not name.strip():
            raise StoreError("annotator name is blank")
        if role not in ("annotator", "admin"):
            raise StoreError(f"unknown role {role!r}; expected 'annotator' or 'admin'")
        token = secrets.token_urlsafe(24)
        try:
            with self.transaction() as session:
                session.add(AnnotatorRow(name=name, token_hash=_hash_token(token), role=role))
        except IntegrityError:
            raise StoreError(f"an annotator named {name!r} already exists") from None
        return token

    def annotators(self, role: str | None = "annotator") -> list[Annotator]:
        query = select(AnnotatorRow).order_by(AnnotatorRow.id)
        if role:
            query = query.where(AnnotatorRow.role == role)
        with self.transaction() as session:
            return [Annotator(row.id, row.name, row.role) for row in session.scalars(query)]

    def ensure_annotators(self, names: Sequence[str]) -> list[Annotator]:
        """Annotators by name, registering the missing ones (their tokens are not shown: for simulated pools)."""
        existing = {a.name: a for a in self.annotators(role=None)}
        for name in names:
            if name not in existing:
                self.add_annotator(name)
        existing = {a.name: a for a in self.annotators(role=None)}
        return [existing[name] for name in names]

    def authenticate(self, token: str) -> Annotator | None:
        with self.transaction() as session:
            digest = _hash_token(token)
            row = session.scalar(select(AnnotatorRow).where(AnnotatorRow.token_hash == digest))
            # the lookup compares digests, which leak nothing about the token; the final check is constant-time too
            if row is None or not hmac.compare_digest(row.token_hash, digest):
                return None
            return Annotator(row.id, row.name, row.role)

    def open_session(self, annotator: Annotator) -> str:
        """A fresh session secret for the cookie; the login token itself never goes into a cookie."""
        secret = secrets.token_urlsafe(32)
        with self.transaction() as session:
            session.add(SessionRow(id_hash=_hash_token(secret), annotator_id=annotator.id))
        return secret

    def session_annotator(self, secret: str) -> Annotator | None:
        with self.transaction() as session:
            row = session.scalar(
                select(AnnotatorRow).join(SessionRow, SessionRow.annotator_id == AnnotatorRow.id)
                .where(SessionRow.id_hash == _hash_token(secret))
            )
            return Annotator(row.id, row.name, row.role) if row else None

    # ---- the annotation queue -----------------------------------------------------------------------

    def add_assignments(self, assignments: Iterable[tuple[int, int, bool]]) -> int:
        """Queue (pair_id, annotator_id, a_on_left) items at the end of each annotator's queue."""
        added = 0
        with self.transaction() as session:
            ends: dict[int, int] = {}
            for pair_id, annotator_id, a_on_left in assignments:
                if annotator_id not in ends:
                    ends[annotator_id] = _queue_end(session, annotator_id)
                ends[annotator_id] += 1
                session.add(AssignmentRow(pair_id=pair_id, annotator_id=annotator_id, a_on_left=a_on_left,
                                          position=ends[annotator_id]))
                added += 1
        return added

    def assignment_counts(self) -> dict[str, Any]:
        """What `assign` needs to balance: pairs with their assigned annotators, and each annotator's load."""
        with self.transaction() as session:
            pairs = {pid: gold for pid, gold in session.execute(select(PairRow.id, PairRow.gold))}
            assigned: dict[int, set[int]] = {pid: set() for pid in pairs}
            for pair_id, annotator_id in session.execute(select(AssignmentRow.pair_id, AssignmentRow.annotator_id)):
                assigned[pair_id].add(annotator_id)
            return {"gold": pairs, "assigned": assigned}

    def next_task(self, annotator: Annotator) -> Task | None:
        """The first open item of this annotator's queue, or None when they are done."""
        with self.transaction() as session:
            row = session.scalar(
                select(AssignmentRow)
                .where(AssignmentRow.annotator_id == annotator.id, AssignmentRow.status == "open")
                .order_by(AssignmentRow.position, AssignmentRow.id).limit(1)
            )
            if row is None:
                return None
            pair = session.get(PairRow, row.pair_id)
            clip = session.get(ClipRow, pair.clip_id)
            text_a = session.get(CaptionRow, pair.caption_a_id).text
            text_b = session.get(CaptionRow, pair.caption_b_id).text
            done, assigned = _progress(session, annotator.id)
            return Task(
                assignment_id=row.id, clip_id=clip.id, has_audio=bool(clip.audio_path),
                references=[] if clip.audio_path else _references(session, clip.id),
                left=text_a if row.a_on_left else text_b, right=text_b if row.a_on_left else text_a,
                done=done, assigned=assigned,
            )

    def progress(self, annotator: Annotator) -> tuple[int, int]:
        with self.transaction() as session:
            return _progress(session, annotator.id)

    def submit(self, annotator: Annotator, assignment_id: int, answer: str, seconds: float | None = None) -> str:
        """Record an answer to one of this annotator's assignments, atomically; returns the stored choice.

        `answer` names what the annotator saw: left / right / tie / skip; the store maps the side to caption a
        or b through the layout it chose, so callers stay blind. A skip is logged but is not a verdict: the item
        goes to the end of the queue.
        """
        if answer not in ANSWERS:
            raise StoreError(f"unknown answer {answer!r}; expected one of {', '.join(ANSWERS)}")
        if seconds is not None and not (0 <= seconds < 86_400):
            raise StoreError(f"time taken must be between 0 and 86400 seconds, got {seconds}")
        try:
            with self.transaction() as session:
                # FOR UPDATE (a no-op on SQLite, whose writers take the database lock at BEGIN): on a server, two
                # submissions of one item queue on its row, so the second sees it done; the unique index on verdicts
                # backs this up for any writer that does not lock
                row = session.get(AssignmentRow, assignment_id, with_for_update=True)
                # another annotator's item is indistinguishable from a missing one
                if row is None or row.annotator_id != annotator.id:
                    raise NotFound(f"no assignment {assignment_id} for this annotator")
                if row.status == "done":
                    raise AlreadyJudged(f"assignment {assignment_id} is already judged")
                choice = answer
                if answer in ("left", "right"):
                    choice = "a" if (answer == "left") == row.a_on_left else "b"
                session.add(JudgmentRow(assignment_id=row.id, choice=choice, a_on_left=row.a_on_left,
                                        seconds=seconds))
                if choice == "skip":
                    row.position = _queue_end(session, annotator.id) + 1
                else:
                    row.status = "done"
        except IntegrityError:
            raise AlreadyJudged(f"assignment {assignment_id} is already judged") from None
        return choice

    def clip_audio(self, annotator: Annotator, clip_id: str) -> Path | None:
        """The audio file of a clip in this annotator's queue; looked up by id, never by a requested path."""
        with self.transaction() as session:
            path = session.scalar(
                select(ClipRow.audio_path)
                .join(PairRow, PairRow.clip_id == ClipRow.id)
                .join(AssignmentRow, AssignmentRow.pair_id == PairRow.id)
                .where(ClipRow.id == clip_id, AssignmentRow.annotator_id == annotator.id).limit(1)
            )
        return Path(path) if path and Path(path).is_file() else None

    # ---- reading the judgments back -----------------------------------------------------------------

    def judgment_rows(self, include_skips: bool = False) -> list[dict]:
        """One flat row per judgment with its pair, captions, systems and annotator (see `iter_judgment_rows`)."""
        return list(self.iter_judgment_rows(include_skips))

    def iter_judgment_rows(self, include_skips: bool = False, captions: bool = True,
                           batch: int = 10_000) -> Iterator[dict]:
        """`judgment_rows`, streamed `batch` rows at a time (a server-side cursor on PostgreSQL): what exports and
        loaders read, so 400,000 judgments never sit in memory at once. Without `captions`, the rows leave out the
        caption texts and systems (agreement statistics need neither, and the two joins cost half the time)."""
        columns = [JudgmentRow.id.label("judgment_id"), JudgmentRow.assignment_id, PairRow.id.label("pair_id"),
                   PairRow.clip_id, JudgmentRow.choice, AnnotatorRow.name.label("annotator"), JudgmentRow.a_on_left,
                   JudgmentRow.seconds, PairRow.gold, PairRow.origin, JudgmentRow.created.label("time")]
        query = (
            select(*columns)
            .join(AssignmentRow, JudgmentRow.assignment_id == AssignmentRow.id)
            .join(PairRow, AssignmentRow.pair_id == PairRow.id)
            .join(AnnotatorRow, AssignmentRow.annotator_id == AnnotatorRow.id)
            .order_by(JudgmentRow.id)
        )
        if captions:
            caption_a, caption_b = aliased(CaptionRow), aliased(CaptionRow)
            query = (query.add_columns(caption_a.text.label("caption_a"), caption_b.text.label("caption_b"),
                                       caption_a.system.label("system_a"), caption_b.system.label("system_b"))
                     .join(caption_a, PairRow.caption_a_id == caption_a.id)
                     .join(caption_b, PairRow.caption_b_id == caption_b.id))
        if not include_skips:
            query = query.where(JudgmentRow.choice != "skip")
        # a Core connection, not an ORM session: at this size the ORM's row handling would double the time
        with self.engine.connect() as connection:
            result = connection.execution_options(read_only=True, yield_per=batch).execute(query)
            keys = list(result.keys())
            for row in result:
                fields = dict(zip(keys, row, strict=True))
                fields["time"] = fields["time"].isoformat()
                yield fields

    def pair_rows(self) -> list[dict]:
        """Every pair with its captions (judged or not): what task exports read."""
        caption_a = aliased(CaptionRow)
        caption_b = aliased(CaptionRow)
        query = (
            select(PairRow.id.label("pair_id"), PairRow.clip_id, caption_a.text.label("caption_a"),
                   caption_b.text.label("caption_b"), caption_a.system.label("system_a"),
                   caption_b.system.label("system_b"), PairRow.gold, PairRow.origin)
            .join(caption_a, PairRow.caption_a_id == caption_a.id)
            .join(caption_b, PairRow.caption_b_id == caption_b.id)
            .order_by(PairRow.id)
        )
        with self.transaction() as session:
            return [row._asdict() for row in session.execute(query)]

    def counts(self) -> dict[str, int]:
        with self.transaction() as session:
            count = lambda query: session.scalar(query)  # noqa: E731
            return {
                "clips": count(select(func.count(ClipRow.id))),
                "captions": count(select(func.count(CaptionRow.id)).where(CaptionRow.system != "reference")),
                "pairs": count(select(func.count(PairRow.id))),
                "gold_pairs": count(select(func.count(PairRow.id)).where(PairRow.gold.is_not(None))),
                "annotators": count(select(func.count(AnnotatorRow.id)).where(AnnotatorRow.role == "annotator")),
                "assignments": count(select(func.count(AssignmentRow.id))),
                "open_assignments": count(select(func.count(AssignmentRow.id)).where(AssignmentRow.status == "open")),
                "judgments": count(select(func.count(JudgmentRow.id)).where(JudgmentRow.choice != "skip")),
                "skips": count(select(func.count(JudgmentRow.id)).where(JudgmentRow.choice == "skip")),
            }

    def import_judgments(self, rows: Iterable[ImportedJudgment], origin: str, clips: Iterable[Clip] = (),
                         references: Iterable[Caption] = ()) -> dict[str, int]:
        """Store judgments made elsewhere (with their clips, references, captions, pairs and annotators), all in
        one transaction: a file that fails halfway imports nothing.

        A judgment by an annotator who already has that pair is not stored twice; it is counted as a duplicate.
        """
        stats = {"judgments": 0, "duplicates": 0}
        with self.transaction() as session:
            for clip in clips:
                _ensure_clip(session, clip)
            for caption in references:
                _ensure_caption(session, caption.clip_id, caption.text, caption.source, None)
            annotators: dict[str, int] = {}  # name -> id
            queue_ends: dict[int, int] = {}  # annotator id -> last queue position
            pairs: dict[tuple, tuple[int, bool]] = {}  # (clip, text a, system a, text b, system b) -> (id, flipped)
            assigned = set(session.execute(select(AssignmentRow.pair_id, AssignmentRow.annotator_id)).all())
            for row in rows:
                pair = row.pair
                key = (pair.clip.id, pair.caption_a.text, pair.caption_a.source, pair.caption_b.text,
                       pair.caption_b.source)
                if key not in pairs:
                    pair_id, _, flipped = _ensure_pair(session, pair, origin)
                    pairs[key] = (pair_id, flipped)
                pair_id, flipped = pairs[key]
                if row.annotator not in annotators:
                    annotators[row.annotator] = _ensure_annotator(session, row.annotator)
                    queue_ends[annotators[row.annotator]] = _queue_end(session, annotators[row.annotator])
                annotator_id = annotators[row.annotator]
                if (pair_id, annotator_id) in assigned:
                    stats["duplicates"] += 1
                    continue
                assigned.add((pair_id, annotator_id))
                queue_ends[annotator_id] += 1
                assignment = AssignmentRow(pair_id=pair_id, annotator_id=annotator_id, a_on_left=True,
                                           position=queue_ends[annotator_id], status="done")
                session.add(assignment)
                session.flush()
                choice = {"a": "b", "b": "a"}.get(row.choice, row.choice) if flipped else row.choice
                session.add(JudgmentRow(assignment_id=assignment.id, choice=choice, a_on_left=True,
                                        seconds=row.seconds, created=row.time or _now()))
                stats["judgments"] += 1
        return stats


@dataclass(frozen=True)
class NewPair:
    """A pair to store: two captions of one clip (with the systems that wrote them) and an optional known answer."""

    clip: Clip
    caption_a: Caption
    caption_b: Caption
    gold: str | None = None
    decoding_a: dict | None = None
    decoding_b: dict | None = None
    origin: str | None = None  # where this pair came from, when it differs from the batch's origin


@dataclass(frozen=True)
class ImportedJudgment:
    pair: NewPair
    choice: str
    annotator: str
    seconds: float | None = None
    time: datetime | None = None


# ---- helpers inside one transaction ----------------------------------------------------------------


def _clip_record(row: ClipRow) -> Clip:
    return Clip(id=row.id, audio_path=row.audio_path, duration=row.duration, sample_rate=row.sample_rate,
                split=row.split, domain=row.domain, metadata=json.loads(row.metadata_json))


def _ensure_clip(session: Session, clip: Clip) -> bool:
    if session.get(ClipRow, clip.id) is not None:
        return False
    audio = str(Path(clip.audio_path).resolve()) if clip.audio_path else None
    session.add(ClipRow(id=clip.id, audio_path=audio, duration=clip.duration, sample_rate=clip.sample_rate,
                        split=clip.split, domain=clip.domain, metadata_json=json.dumps(clip.metadata)))
    session.flush()
    return True


def _ensure_caption(session: Session, clip_id: str, text: str, system: str, decoding: dict | None) -> int:
    if session.get(ClipRow, clip_id) is None:
        raise NotFound(f"caption of unknown clip {clip_id!r}: add the clip first")
    found = session.scalar(select(CaptionRow.id).where(
        CaptionRow.clip_id == clip_id, CaptionRow.system == system, CaptionRow.text == text))
    if found is not None:
        return found
    row = CaptionRow(clip_id=clip_id, text=text, system=system,
                     decoding_json=json.dumps(decoding, sort_keys=True) if decoding else None)
    session.add(row)
    session.flush()
    return row.id


def _ensure_pair(session: Session, pair: NewPair, origin: str) -> tuple[int, bool, bool]:
    """(pair id, whether it is new, whether the stored pair has a and b the other way round)."""
    if pair.gold not in (None, "a", "b", "tie"):
        raise StoreError(f"gold answer must be a, b or tie, got {pair.gold!r}")
    if pair.caption_a.clip_id != pair.clip.id or pair.caption_b.clip_id != pair.clip.id:
        raise StoreError(f"pair of clip {pair.clip.id!r} holds a caption of another clip")
    _ensure_clip(session, pair.clip)
    a = _ensure_caption(session, pair.clip.id, pair.caption_a.text, pair.caption_a.source, pair.decoding_a)
    b = _ensure_caption(session, pair.clip.id, pair.caption_b.text, pair.caption_b.source, pair.decoding_b)
    if a == b:
        raise StoreError(f"clip {pair.clip.id!r}: a pair needs two different captions, got {pair.caption_a.text!r} "
                         "twice")
    for first, second, flipped in ((a, b, False), (b, a, True)):
        found = session.scalar(select(PairRow.id).where(PairRow.caption_a_id == first, PairRow.caption_b_id == second))
        if found is not None:
            return found, False, flipped
    row = PairRow(clip_id=pair.clip.id, caption_a_id=a, caption_b_id=b, gold=pair.gold, origin=pair.origin or origin)
    session.add(row)
    session.flush()
    return row.id, True, False


def _ensure_annotator(session: Session, name: str) -> int:
    found = session.scalar(select(AnnotatorRow.id).where(AnnotatorRow.name == name))
    if found is not None:
        return found
    row = AnnotatorRow(name=name, token_hash=_hash_token(secrets.token_urlsafe(24)), role="annotator")
    session.add(row)
    session.flush()
    return row.id


def _references(session: Session, clip_id: str) -> list[str]:
    return list(session.scalars(select(CaptionRow.text).where(
        CaptionRow.clip_id == clip_id, CaptionRow.system == "reference").order_by(CaptionRow.id)))


def _queue_end(session: Session, annotator_id: int) -> int:
    return session.scalar(select(func.coalesce(func.max(AssignmentRow.position), 0))
                          .where(AssignmentRow.annotator_id == annotator_id))


def _progress(session: Session, annotator_id: int) -> tuple[int, int]:
    rows = dict(session.execute(
        select(AssignmentRow.status, func.count(AssignmentRow.id))
        .where(AssignmentRow.annotator_id == annotator_id).group_by(AssignmentRow.status)).all())
    return rows.get("done", 0), sum(rows.values())
