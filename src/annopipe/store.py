"""The workspace database: documents, paragraphs and predictions by model version.

SQLAlchemy Core over SQLite; the schema is plain Core, so moving a team to PostgreSQL means
swapping the SQLite-specific insert-if-absent for PostgreSQL's `ON CONFLICT DO NOTHING`. All keys are content-derived, and every write is insert-if-absent inside a transaction: tagging
the same input again adds nothing, and a crash mid-run leaves everything committed before it
intact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DatabaseError

from annopipe.documents import Document
from annopipe.errors import AnnopipeError
from annopipe.records import Record

metadata = MetaData()

documents = Table(
    "documents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("source", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("added_at", String(32), nullable=False),
)

paragraphs = Table(
    "paragraphs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("doc_id", String(32), ForeignKey("documents.id"), nullable=False, index=True),
    Column("idx", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("hash", String(32), nullable=False),
)

predictions = Table(
    "predictions",
    metadata,
    Column("paragraph_id", String(64), ForeignKey("paragraphs.id"), primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("paragraph_hash", String(32), nullable=False),
    Column("record", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    def __init__(self, url: str):
        self.engine = create_engine(url)
        event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            metadata.create_all(self.engine)
        except DatabaseError as err:
            raise AnnopipeError(f"workspace database {url} cannot be opened ({err.orig}); move it aside") from None

    @classmethod
    def in_workspace(cls, workspace: Path) -> Store:
        workspace.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{workspace / 'annopipe.sqlite'}")

    def _insert_ignore(self, table: Table, rows: list[dict]) -> int:
        """Insert rows whose key is not there yet; returns how many were new."""
        if not rows:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(sqlite_insert(table).on_conflict_do_nothing(), rows).rowcount

    def add_document(self, document: Document) -> bool:
        """Store a document and its paragraphs; False when it was already there."""
        added = self._insert_ignore(
            documents,
            [{"id": document.id, "source": document.source, "format": document.format, "text": document.text,
              "added_at": _now()}],
        )
        self._insert_ignore(
            paragraphs,
            [
                {"id": p.id, "doc_id": p.doc_id, "idx": p.index, "kind": p.kind, "start": p.start, "end": p.end,
                 "text": p.text, "hash": p.hash}
                for p in document.paragraphs
            ],
        )
        return added == 1

    def add_predictions(self, records: Iterable[Record], model_version: str) -> int:
        rows = [
            {"paragraph_id": r.paragraph_id, "model_version": model_version, "paragraph_hash": r.paragraph_hash,
             "record": json.dumps(r.to_dict(), ensure_ascii=False), "created_at": _now()}
            for r in records
        ]
        return self._insert_ignore(predictions, rows)

    def predictions(self, paragraph_ids: list[str], model_version: str) -> dict[str, Record]:
        """Stored predictions of one model version for the given paragraphs, by paragraph id."""
        if not paragraph_ids:
            return {}
        query = select(predictions.c.paragraph_id, predictions.c.record).where(
            predictions.c.model_version == model_version, predictions.c.paragraph_id.in_(paragraph_ids)
        )
        with self.engine.connect() as conn:
            return {pid: Record.from_dict(json.loads(rec)) for pid, rec in conn.execute(query)}


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
