"""The ingest and tag workflows: files in, paragraphs and predictions stored and streamed out.

Bad files never stop a run: each becomes one line in the report and the rest is processed.
Paragraphs already tagged by the same model version are read back from the store instead of
being tagged again, so a re-run costs only reading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from annopipe.documents import Document, Paragraph, collect_inputs, read_document
from annopipe.errors import AnnopipeError
from annopipe.records import Record
from annopipe.store import Store

if TYPE_CHECKING:
    from annopipe.nlp.pipeline import Predictor

OnFile = Callable[[int, int], None]
"""Called with (files done, files in total) after each input file."""


def _no_progress(done: int, total: int) -> None:
    pass


@dataclass
class Report:
    files: int = 0
    documents: int = 0
    new_documents: int = 0
    paragraphs: int = 0
    tagged: int = 0
    reused: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file, same content as)
    ignored: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_inputs(paths: list[Path], report: Report, on_file: OnFile = _no_progress) -> Iterator[Document]:
    """Documents from files and folders, once per distinct content; problems go to the report."""
    inputs = collect_inputs(paths)
    report.files = len(inputs.files)
    report.ignored.extend(inputs.ignored)
    report.problems.extend(inputs.problems)
    first_seen: dict[str, str] = {}
    for done, path in enumerate(inputs.files, 1):
        try:
            document = read_document(path)
        except AnnopipeError as err:
            report.problems.append(str(err))
        else:
            if document.id in first_seen:
                report.duplicates.append((str(path), first_seen[document.id]))
            else:
                first_seen[document.id] = str(path)
                report.documents += 1
                report.paragraphs += len(document.paragraphs)
                yield document
        on_file(done, len(inputs.files))


def ingest(paths: list[Path], store: Store, report: Report, on_file: OnFile = _no_progress) -> Iterator[Record]:
    """Store documents and their paragraphs; yields each paragraph as an (unannotated) record."""
    for document in read_inputs(paths, report, on_file):
        report.new_documents += store.add_document(document)
        for paragraph in document.paragraphs:
            yield Record.for_paragraph(paragraph, document.source)


def tag(
    paths: list[Path], tagger: Predictor, store: Store, report: Report, on_file: OnFile = _no_progress
) -> Iterator[Record]:
    """Tag every paragraph of the briefs at `paths`, in input order."""
    return tag_documents(read_inputs(paths, report, on_file), tagger, store, report)


def tag_for_push(paths: list[Path], documents: list[str], tagger: Predictor, store: Store, report: Report) -> list[Record]:
    """The records `push` sends: briefs at `paths` and stored documents by id, tagged where needed."""
    if not paths and not documents:
        raise AnnopipeError("name the briefs to push (files or folders) or stored documents with --document")
    records = list(tag(paths, tagger, store, report)) if paths else []
    return records + list(tag_documents(store.documents(documents), tagger, store, report))


def tag_documents(documents: Iterable[Document], tagger: Predictor, store: Store, report: Report) -> Iterator[Record]:
    """Tag every paragraph (reusing stored predictions of the same model version), in input order.

    Paragraphs are tagged in batches of the configured size across document boundaries; each
    batch is stored before its records are yielded, so whatever was yielded is also stored.
    """
    pending: list[tuple[Paragraph, str, Record | None]] = []

    def flush() -> Iterator[Record]:
        todo = [(p, s) for p, s, r in pending if r is None]
        fresh = iter(tagger([p for p, _ in todo], [s for _, s in todo]) if todo else [])
        done = [r if r is not None else next(fresh) for _, _, r in pending]
        store.add_predictions([r for (_, _, cached), r in zip(pending, done) if cached is None], tagger.version)
        report.tagged += len(todo)
        pending.clear()
        yield from done

    for document in documents:
        report.new_documents += store.add_document(document)
        cached = store.predictions([p.id for p in document.paragraphs], tagger.version)
        report.reused += len(cached)
        for paragraph in document.paragraphs:
            record = cached.get(paragraph.id)
            if record is not None:
                record.source = document.source
                if not pending:  # nothing waits for the tagger ahead of it: no need to hold it
                    yield record
                    continue
            pending.append((paragraph, document.source, record))
            if sum(r is None for _, _, r in pending) >= tagger.config.batch_size:
                yield from flush()
    yield from flush()
