"""The judgment store's tables, their schema version, and the database connection.

SQLite by default (a file in the run directory, WAL, a busy timeout, `synchronous=FULL` so an acknowledged
judgment survives a killed server), or any SQLAlchemy URL for a team server (PostgreSQL through psycopg 3).
A unique index makes a second judgment of the same assignment impossible, whatever the caller.
"""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Engine,
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
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from prefcap.errors import PrefcapError

DEFAULT_FILE = "prefs.sqlite"


def now() -> datetime:
    return datetime.now(UTC)



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
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class AnnotatorRow(_Base):
    __tablename__ = "annotators"
    __table_args__ = (CheckConstraint("role IN ('annotator', 'admin')", name="known_role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    token_hash: Mapped[str] = mapped_column(String, unique=True)
    role: Mapped[str] = mapped_column(String, default="annotator")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class SessionRow(_Base):
    __tablename__ = "sessions"
    id_hash: Mapped[str] = mapped_column(String, primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


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
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


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



def _url(target: str | Path) -> str:
    text = str(target)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).resolve()}"


def sqlite_file(url: str) -> Path | None:
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



def open_engine(target: str | Path, create: bool = True) -> tuple[str, Engine]:
    """(URL, engine) of the store at `target` (a SQLite file or a server URL), its tables ready at this version."""
    url = _url(target)
    path = sqlite_file(url)
    if path is not None and not create and not path.is_file():
        raise PrefcapError(f"{target}: no such judgment store (create one with 'prefcap pairs' or an import)")
    if path is not None:
        if path.is_file():
            _check_sqlite_store(path, target)  # read-only, before the pragmas below switch it to WAL
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            _sqlite_pragmas(engine)
        _prepare_schema(engine, target)
    except (SQLAlchemyError, ImportError) as error:
        raise PrefcapError(f"{target}: cannot open it as a judgment store ({str(error).splitlines()[0]})") from None
    return url, engine
