"""The workspace database: documents, paragraphs, predictions by model version, gold, sync state.

SQLAlchemy Core over SQLite; the schema is plain Core, so moving a team to PostgreSQL means
swapping the SQLite-specific insert-if-absent for PostgreSQL's `ON CONFLICT DO NOTHING`. All keys
are content-derived, and every write is insert-if-absent inside a transaction: tagging the same
input again adds nothing, and a crash mid-run leaves everything committed before it intact.

Gold annotations are never updated in place: a changed annotation supersedes the current row
and the old one stays, so the history of every correction is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
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
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DatabaseError

from annopipe.documents import Document, Paragraph, content_hash
from annopipe.errors import AnnopipeError
from annopipe.records import Record

PARTS = ("spans", "label", "all")
"""What a gold row holds: spans and relations, the paragraph label, or both (imported files)."""


@dataclass(frozen=True)
class GoldEntry:
    """One person's annotation of one paragraph, with where it came from."""

    record: Record
    part: str
    origin: str
    annotator: str
    example_id: int | None = None


def gold_content(record: Record, part: str) -> dict:
    """The part of a record that a gold row of this part holds (and that its hash covers)."""
    fields = record.to_dict()
    content = {}
    if part in ("spans", "all"):
        content["spans"] = [{k: s[k] for k in ("start", "end", "label")} for s in fields["spans"]]
        content["relations"] = [{k: r[k] for k in ("head", "tail", "label")} for r in fields["relations"]]
    if part in ("label", "all"):
        content["label"] = fields["label"]["label"] if fields["label"] else None
    return content

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

gold = Table(
    "gold",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("paragraph_id", String(64), nullable=False, index=True),
    Column("paragraph_hash", String(32), nullable=False),
    Column("part", String(8), nullable=False),  # spans (+ relations) | label | all
    Column("origin", Text, nullable=False),  # the doccano project's URL, or the file it was imported from
    Column("annotator", String(150), nullable=False),
    Column("example_id", Integer),
    Column("content_hash", String(32), nullable=False),
    Column("record", Text, nullable=False),
    Column("stored_at", String(32), nullable=False),
    Column("superseded_at", String(32)),
)

import_tasks = Table(
    "import_tasks",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("origin", Text, nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32)),
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

    def documents(self, doc_ids: list[str]) -> list[Document]:
        """Stored documents with their paragraphs, in the order asked; unknown ids are an error."""
        with self.engine.connect() as conn:
            docs = {row.id: row for row in conn.execute(select(documents).where(documents.c.id.in_(doc_ids)))}
            missing = [doc_id for doc_id in doc_ids if doc_id not in docs]
            if missing:
                raise AnnopipeError(f"document {missing[0]} is not in this workspace; tag or ingest it first")
            rows = conn.execute(
                select(paragraphs).where(paragraphs.c.doc_id.in_(doc_ids)).order_by(paragraphs.c.doc_id, paragraphs.c.idx)
            )
            by_doc: dict[str, list[Paragraph]] = {doc_id: [] for doc_id in doc_ids}
            for row in rows:
                by_doc[row.doc_id].append(Paragraph(row.doc_id, row.idx, row.kind, row.start, row.end, row.text))
        return [
            Document(doc_id, docs[doc_id].source, docs[doc_id].format, docs[doc_id].text, by_doc[doc_id])
            for doc_id in doc_ids
        ]

    def paragraph_records(self, paragraph_ids: list[str]) -> dict[str, Record]:
        """Stored paragraphs as unannotated records, by id: the reference text for pulled annotations."""
        query = (
            select(paragraphs, documents.c.source)
            .join(documents, documents.c.id == paragraphs.c.doc_id)
            .where(paragraphs.c.id.in_(paragraph_ids))
        )
        with self.engine.connect() as conn:
            return {
                row.id: Record.for_paragraph(Paragraph(row.doc_id, row.idx, row.kind, row.start, row.end, row.text),
                                             row.source)
                for row in conn.execute(query)
            }

    def paragraph_texts(self, limit: int) -> dict[str, str]:
        """Up to `limit` stored paragraphs (id -> text), in storage order: unlabelled text for rehearsal."""
        query = select(paragraphs.c.id, paragraphs.c.text).order_by(paragraphs.c.doc_id, paragraphs.c.idx).limit(limit)
        with self.engine.connect() as conn:
            return {row.id: row.text for row in conn.execute(query)}

    def add_gold(self, entries: Iterable[GoldEntry]) -> dict[str, int]:
        """Store annotations; counts of `new`, `replaced` (history kept) and `unchanged` ones.

        The current row of a (paragraph, part, origin, annotator) is replaced only when its content
        changed, so pulling the same corrections twice changes nothing. Within one call, a later
        entry for the same key wins.
        """
        latest: dict[tuple, tuple[GoldEntry, str]] = {}
        for entry in entries:
            if entry.part not in PARTS:
                raise ValueError(f"unknown gold part {entry.part!r}")
            digest = content_hash(json.dumps(gold_content(entry.record, entry.part), sort_keys=True))
            latest[(entry.record.paragraph_id, entry.part, entry.origin, entry.annotator)] = (entry, digest)
        counts = {"new": 0, "replaced": 0, "unchanged": 0}
        if not latest:
            return counts
        now = _now()
        key_columns = (gold.c.paragraph_id, gold.c.part, gold.c.origin, gold.c.annotator)
        with self.engine.begin() as conn:
            query = select(*key_columns, gold.c.id, gold.c.content_hash).where(
                gold.c.superseded_at.is_(None), gold.c.origin.in_({key[2] for key in latest})
            )
            current = {tuple(row[:4]): (row.id, row.content_hash) for row in conn.execute(query)}
            superseded, rows = [], []
            for key, (entry, digest) in latest.items():
                before = current.get(key)
                if before is not None and before[1] == digest:
                    counts["unchanged"] += 1
                    continue
                if before is not None:
                    superseded.append(before[0])
                counts["replaced" if before is not None else "new"] += 1
                rows.append({
                    "paragraph_id": entry.record.paragraph_id, "paragraph_hash": entry.record.paragraph_hash,
                    "part": entry.part, "origin": entry.origin, "annotator": entry.annotator,
                    "example_id": entry.example_id, "content_hash": digest,
                    "record": json.dumps(entry.record.to_dict(), ensure_ascii=False), "stored_at": now,
                    "superseded_at": None,
                })
            if superseded:
                conn.execute(update(gold).where(gold.c.id.in_(superseded)).values(superseded_at=now))
            if rows:
                conn.execute(gold.insert(), rows)
        return counts

    def gold(self, history: bool = False) -> list[dict]:
        """Gold rows (current ones unless `history`) in storage order, each with its record."""
        query = select(gold).order_by(gold.c.id)
        if not history:
            query = query.where(gold.c.superseded_at.is_(None))
        with self.engine.connect() as conn:
            return [{**row._asdict(), "record": Record.from_dict(json.loads(row.record))} for row in conn.execute(query)]

    def gold_records(self, annotator: str | None = None) -> list[Record]:
        """Current gold, one record per paragraph and annotator (only `annotator`'s when given): spans
        and label parts joined.

        Annotations of different people stay separate records, never merged.
        """
        merged: dict[tuple[str, str], Record] = {}
        for row in self.gold():
            if annotator is not None and row["annotator"] != annotator:
                continue
            record: Record = row["record"]
            key = (record.paragraph_id, row["annotator"])
            target = merged.setdefault(key, Record.for_paragraph(record.paragraph(), record.source))
            if row["part"] in ("spans", "all"):
                target.spans, target.relations = record.spans, record.relations
            if row["part"] in ("label", "all"):
                target.label = record.label
        return list(merged.values())

    def count_gold(self, origin: str) -> int:
        with self.engine.connect() as conn:
            rows = conn.execute(select(gold.c.id).where((gold.c.origin == origin) & gold.c.superseded_at.is_(None)))
            return len(rows.all())

    def start_import(self, task_id: str, origin: str) -> None:
        self._insert_ignore(import_tasks, [{"task_id": task_id, "origin": origin, "started_at": _now()}])

    def open_imports(self, origin: str) -> list[str]:
        """Imports started on a project whose end nobody saw (a crash or a lost connection)."""
        query = select(import_tasks.c.task_id).where(
            (import_tasks.c.origin == origin) & import_tasks.c.finished_at.is_(None)
        )
        with self.engine.connect() as conn:
            return [row.task_id for row in conn.execute(query)]

    def finish_import(self, task_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(import_tasks).where(import_tasks.c.task_id == task_id).values(finished_at=_now()))


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
