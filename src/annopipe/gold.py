"""Gold coming in: JSONL gold files, other tools' files, the workspace's pulled gold; each checked first.

Whatever the source, a record is sound (offsets, whole characters, relations between its spans)
and uses only the labels the config declares: doccano would invent an undeclared label silently
and a model would learn it. Every input entry is accounted for in what an import reports.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from annopipe.config import Config
from annopipe.documents import content_hash
from annopipe.errors import AnnopipeError
from annopipe.records import Record, check_record, read_jsonl
from annopipe.store import GoldEntry, Store, gold_content


def label_problems(record: Record, config: Config) -> list[str]:
    """Labels in a record that the config does not declare."""
    problems = [f"span label {s.label!r} is not in span_labels" for s in record.spans if s.label not in config.span_labels]
    problems += [f"relation label {r.label!r} is not in relations.labels" for r in record.relations
                 if r.label not in config.relations.labels]
    if record.label and record.label.label not in config.paragraphs.labels:
        problems.append(f"paragraph label {record.label.label!r} is not in paragraphs.labels")
    return problems


def read_gold(path: Path, config: Config) -> list[Record]:
    """Gold records from a JSONL file or a folder of them, each checked for consistency and known labels."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not path.exists():
        raise AnnopipeError(f"{path}: no gold files (*.jsonl) found")
    records, seen = [], set()
    for file in files:
        for number, record in enumerate(read_jsonl(file), 1):
            where = f"{file} record {number} ({record.paragraph_id})"
            problems = check_record(record)
            if content_hash(record.text) != record.paragraph_hash:
                problems.append("paragraph_hash does not match the text")
            problems += label_problems(record, config)
            if problems:
                raise AnnopipeError(f"{where}: {problems[0]}")
            if record.paragraph_id in seen:
                raise AnnopipeError(f"{where}: paragraph annotated twice")
            seen.add(record.paragraph_id)
            records.append(record)
    return records


def workspace_gold(config: Config, store: Store, annotator: str | None = None) -> list[Record]:
    """The workspace's current gold (pulled and imported; one annotator's if given), checked against today's config."""
    records = store.gold_records(annotator)
    for record in records:
        problems = label_problems(record, config)
        if problems:
            raise AnnopipeError(f"workspace gold {record.paragraph_id}: {problems[0]}")
    return records


def gold_source(source: str, config: Config, store: Store) -> list[Record]:
    """Gold from a JSONL file or folder, or `@NAME`: what annotator NAME left in the workspace
    (pulled from a doccano project without collaboration, where each person's work is kept apart)."""
    if source.startswith("@"):
        records = workspace_gold(config, store, source[1:])
        if not records:
            raise AnnopipeError(f"no gold of annotator {source[1:]!r} in this workspace; "
                                "`annopipe pull` from a project without collaboration first")
        return records
    return read_gold(Path(source), config)


def training_records(config: Config, store: Store, files: list[Path]) -> list[Record]:
    """Gold files first, then the workspace's gold, which wins for the same paragraph."""
    return [r for path in files for r in read_gold(path, config)] + workspace_gold(config, store)


@dataclass
class ImportReport:
    entries: int = 0
    repeated: list[tuple[int, int]] = field(default_factory=list)  # (entry, the earlier entry it repeats), 1-based
    counts: Counter = field(default_factory=Counter)  # new / replaced / unchanged, per paragraph

    @property
    def paragraphs(self) -> int:
        return self.entries - len(self.repeated)


def import_gold(records: list[Record], config: Config, store: Store, origin: str, annotator: str) -> ImportReport:
    """Store records read from another tool's file as gold, all or nothing.

    Entries without annopipe ids get ids from their text, so two identical paragraphs (two
    "Analyses" headings) become one: the repeat is reported. Two entries for one paragraph that
    disagree are an error, never a silent last-one-wins.
    """
    report = ImportReport(entries=len(records))
    first: dict[str, tuple[int, dict]] = {}
    for number, record in enumerate(records, 1):
        problems = label_problems(record, config)
        if problems:
            raise AnnopipeError(f"entry {number} ({record.paragraph_id}): {problems[0]}; nothing was imported")
        content = gold_content(record, "all")
        if record.paragraph_id in first:
            earlier, earlier_content = first[record.paragraph_id]
            if earlier_content != content:
                raise AnnopipeError(f"entries {earlier} and {number} annotate the same paragraph "
                                    f"({record.paragraph_id}, {record.text[:40]!r}) differently; "
                                    "keep one of them; nothing was imported")
            report.repeated.append((number, earlier))
        else:
            first[record.paragraph_id] = (number, content)
    unique = [records[number - 1] for number, _ in first.values()]
    report.counts.update(store.add_gold(GoldEntry(r, "all", origin, annotator) for r in unique))
    return report
