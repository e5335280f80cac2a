"""Push predictions to doccano for correction; pull the corrections back as gold.

The server is the truth about what is already there: push matches examples on paragraph id and
hash read from the server, so a rerun after a crash uploads only what is missing, and an example
that exists (edited, confirmed or not) is never touched again. doccano retries a failing import
and stores its examples again each time, so every import is checked afterwards (one example per
paragraph, the exact text, the label counts) and surplus unconfirmed copies are removed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from annopipe.config import Config
from annopipe.doccano.client import (
    CATEGORIES,
    CATEGORY_TYPES,
    RELATION_TYPES,
    RELATIONS,
    SPAN_TYPES,
    SPANS,
    DoccanoClient,
)
from annopipe.doccano.convert import (
    dumps_jsonl,
    from_category_example,
    from_relation_example,
    legacy_offsets,
    to_category_example,
    to_relation_example,
)
from annopipe.errors import AnnopipeError
from annopipe.gold import label_problems
from annopipe.offsets import is_bmp
from annopipe.records import Record, check_record
from annopipe.registry import ModelVersion
from annopipe.store import GoldEntry, Store

CHUNK = 1000
"""Examples per import: each import is verified before the next one starts."""

ORDERS = ("document", "confidence")

COLLABORATIVE = "*"
"""The annotator of a collaborative project's examples: the project's team, working on one copy."""

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39")

OnProgress = Callable[[int, int], None]
"""Called with (examples uploaded, examples to upload) as a push goes on."""


def _no_progress(done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class ProjectKind:
    """One of the two doccano projects annopipe keeps per config: what goes in and what comes back."""

    suffix: str
    resourcetype: str
    project_type: str
    settings: tuple[tuple[str, object], ...]
    task: str
    part: str

    def labels(self, config: Config) -> dict[str, list[str]]:
        if self.part == "spans":
            return {SPAN_TYPES: config.span_labels, RELATION_TYPES: config.relations.labels}
        return {CATEGORY_TYPES: list(config.paragraphs.labels)}

    def to_example(self, record: Record) -> dict:
        return to_relation_example(record) if self.part == "spans" else to_category_example(record)

    def from_example(self, example: dict, stored: Record) -> Record:
        return from_relation_example(example, stored) if self.part == "spans" else from_category_example(example, stored)

    def expected_counts(self, records: list[Record]) -> dict[str, Counter]:
        """How many annotations of each label an import of these records must create."""
        if self.part == "spans":
            return {SPANS: Counter(s.label for r in records for s in r.spans),
                    RELATIONS: Counter(rel.label for r in records for rel in r.relations)}
        return {CATEGORIES: Counter(r.label.label for r in records if r.label)}


SPANS_PROJECT = ProjectKind("", "SequenceLabelingProject", "SequenceLabeling", (("use_relation", True),),
                            "RelationExtraction", "spans")
LABELS_PROJECT = ProjectKind(" paragraph labels", "TextClassificationProject", "DocumentClassification",
                             (("single_class_classification", True),), "DocumentClassification", "label")
KINDS = (SPANS_PROJECT, LABELS_PROJECT)


def origin(client: DoccanoClient, project: dict) -> str:
    """Where gold came from: the project's URL, stable across pulls."""
    return f"{client.url}/projects/{project['id']}"


# -- pure helpers ---------------------------------------------------------------------------------


def confidence(record: Record) -> float:
    """The least certain score of a record's predictions; 1.0 when nothing is scored."""
    scores = [s.score for s in record.spans] + [r.score for r in record.relations]
    scores.append(record.label.score if record.label else None)
    known = [s for s in scores if s is not None]
    return min(known) if known else 1.0


def order_records(records: list[Record], order: str, limit: int | None = None) -> list[Record]:
    """Records in push order: as in the documents, or least confident first (stable on ties)."""
    if order not in ORDERS:
        raise AnnopipeError(f"unknown order {order!r}; use one of {', '.join(ORDERS)}")
    ordered = sorted(records, key=confidence) if order == "confidence" else list(records)
    return ordered[:limit] if limit is not None else ordered


def push_threshold(relations_version: ModelVersion | None) -> float:
    """The relation score a pushed pre-annotation needs: what the trained version in use chose on dev
    for `relations.push_min_precision`; model zero's relations all go."""
    return float(relations_version.meta.get("push_threshold", 0.0)) if relations_version else 0.0


def confident_relations(records: list[Record], threshold: float) -> tuple[list[Record], int]:
    """The records with only the relations scoring at least `threshold` (what annotators tend to
    keep), and how many were left out; spans and labels are untouched."""
    kept, dropped = [], 0
    for record in records:
        relations = [r for r in record.relations if r.score is None or r.score >= threshold]
        dropped += len(record.relations) - len(relations)
        kept.append(replace(record, relations=relations) if len(relations) < len(record.relations) else record)
    return kept, dropped


def label_colors(labels: list[str]) -> dict[str, str]:
    """A distinct, stable colour per label (by position in the config)."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def duplicates_to_remove(examples: list[dict]) -> list[int]:
    """Surplus copies of one paragraph: keep the confirmed copy (else the oldest), drop unconfirmed others."""
    if len(examples) < 2:
        return []
    keep = min(examples, key=lambda e: (not e.get("is_confirmed"), e["id"]))
    return [e["id"] for e in examples if e["id"] != keep["id"] and not e.get("is_confirmed")]


# -- projects ----------------------------------------------------------------------------------------


def find_projects(client: DoccanoClient, config: Config, create: bool = False) -> dict[ProjectKind, dict]:
    """The config's two doccano projects, with their label types; created on push, required on pull."""
    by_name = {p["name"]: p for p in client.projects()}
    found = {}
    for kind in KINDS:
        name = config.doccano.project + kind.suffix
        project = by_name.get(name)
        if project is None:
            if not create:
                raise AnnopipeError(f"doccano at {client.url} has no project {name!r}; push something to it first")
            project = client.create_project(name, kind.resourcetype, kind.project_type,
                                            collaborative_annotation=config.doccano.collaborative,
                                            **dict(kind.settings))
        elif project["project_type"] != kind.project_type:
            raise AnnopipeError(f"doccano project {name!r} is a {project['project_type']} project, "
                                f"expected {kind.project_type}; set doccano.project to another name")
        if create:
            for endpoint, labels in kind.labels(config).items():
                existing = {t["text"] for t in client.label_types(project["id"], endpoint)}
                for label, color in label_colors(labels).items():
                    if label not in existing:
                        client.create_label_type(project["id"], endpoint, label, color)
        found[kind] = project
    return found


def add_member(client: DoccanoClient, config: Config, username: str, role: str) -> None:
    """Give an existing doccano user `role` in both projects (created if needed); a member already is left alone."""
    users = [u for u in client.users(username) if u["username"] == username]
    if not users:
        raise AnnopipeError(f"doccano has no user {username!r}; create it at {client.url}/admin/ first")
    roles = client.roles()
    if role not in roles:
        raise AnnopipeError(f"unknown role {role!r}; use one of {', '.join(roles)}")
    for project in find_projects(client, config, create=True).values():
        if username not in {m["username"] for m in client.members(project["id"])}:
            client.add_member(project["id"], users[0]["id"], role)


def _by_paragraph(examples: Iterable[dict]) -> dict[str, list[dict]]:
    index: dict[str, list[dict]] = {}
    for example in examples:
        paragraph_id = (example.get("meta") or {}).get("paragraph_id")
        if paragraph_id:
            index.setdefault(paragraph_id, []).append(example)
    return index


# -- push ---------------------------------------------------------------------------------------------


@dataclass
class PushReport:
    selected: int = 0
    uploaded: dict[str, int] = field(default_factory=dict)  # project name -> examples
    already: dict[str, int] = field(default_factory=dict)
    duplicates_removed: int = 0
    relations_held_back: int = 0  # scored below the push threshold
    problems: list[str] = field(default_factory=list)


def push(client: DoccanoClient, store: Store, config: Config, records: list[Record],
         on_progress: OnProgress = _no_progress, min_relation_score: float = 0.0) -> PushReport:
    """Upload records to both projects as pre-annotations; only what the server does not have yet.

    Relations scoring below `min_relation_score` are held back (see `push_threshold`). Both
    projects' imports of a chunk start before either is verified, so doccano's worker imports one
    while the other is being checked.
    """
    report = PushReport(selected=len(records))
    records, report.relations_held_back = confident_relations(records, min_relation_score)
    valid = []
    for record in records:
        problems = check_record(record) + label_problems(record, config)
        if problems:
            report.problems.append(f"{record.paragraph_id} ({record.source}): not pushed, {problems[0]}")
        else:
            valid.append(record)
    plans = [(kind, project, _missing(client, store, project, valid, report))
             for kind, project in find_projects(client, config, create=True).items()]
    total = sum(len(todo) for _, _, todo in plans)
    done = 0
    on_progress(0, total)
    for start in range(0, max((len(todo) for _, _, todo in plans), default=0), CHUNK):
        started = [_start_import(client, store, kind, project, todo[start : start + CHUNK])
                   for kind, project, todo in plans if todo[start : start + CHUNK]]
        for pending in started:
            _finish_import(client, store, pending, report)
            done += len(pending.chunk)
            on_progress(done, total)
    return report


def _missing(client: DoccanoClient, store: Store, project: dict, records: list[Record], report: PushReport) -> list[Record]:
    """The records this project does not hold yet, once earlier imports have ended and copies are gone."""
    name = project["name"]
    for task_id in store.open_imports(origin(client, project)):  # an import whose end we never saw may still run
        client.wait(task_id, f"earlier import into {name!r}")
        store.finish_import(task_id)
    on_server = _by_paragraph(client.examples(project["id"]))
    report.duplicates_removed += _remove_duplicates(client, project, on_server)
    todo = []
    for record in records:
        existing = on_server.get(record.paragraph_id)
        if existing is None:
            todo.append(record)
        elif existing[0]["meta"].get("paragraph_hash") != record.paragraph_hash:
            report.problems.append(f"{record.paragraph_id}: doccano example {existing[0]['id']} in {name!r} holds "
                                   "another version of this paragraph; left as it is")
        elif legacy_offsets({**existing[0]["meta"], "text": existing[0]["text"]}):
            report.problems.append(f"{record.paragraph_id}: doccano example {existing[0]['id']} in {name!r} was pushed "
                                   "with code-point offsets, so the browser draws its spans shifted after emoji; "
                                   f"delete it in doccano and push again (--document {record.doc_id})")
    report.already[name] = len(records) - len(todo)
    report.uploaded[name] = 0
    return todo


@dataclass(frozen=True)
class _Import:
    kind: ProjectKind
    project: dict
    chunk: list[Record]
    task_id: str
    before: dict[str, dict]  # annotation counts per user and label before the import


def _start_import(client: DoccanoClient, store: Store, kind: ProjectKind, project: dict, chunk: list[Record]) -> _Import:
    before = {endpoint: client.label_counts(project["id"], endpoint) for endpoint in kind.expected_counts(chunk)}
    task_id = client.upload(project["id"], dumps_jsonl([kind.to_example(r) for r in chunk]), kind.task)
    store.start_import(task_id, origin(client, project))
    return _Import(kind, project, chunk, task_id, before)


def _finish_import(client: DoccanoClient, store: Store, pending: _Import, report: PushReport) -> None:
    name = pending.project["name"]
    result = client.wait(pending.task_id, f"import into {name!r}")
    store.finish_import(pending.task_id)
    for error in result.get("error") or []:
        report.problems.append(f"doccano rejected part of the import into {name!r}: {error}")
    on_server = _by_paragraph(client.examples(pending.project["id"]))
    report.duplicates_removed += _remove_duplicates(client, pending.project, on_server)
    report.problems += _verify(client, pending, on_server)
    report.uploaded[name] += len(pending.chunk)


def _remove_duplicates(client: DoccanoClient, project: dict, on_server: dict[str, list[dict]]) -> int:
    surplus = [i for examples in on_server.values() for i in duplicates_to_remove(examples)]
    client.delete_examples(project["id"], surplus)
    for paragraph_id, examples in on_server.items():
        on_server[paragraph_id] = [e for e in examples if e["id"] not in surplus]
    return len(surplus)


def _verify(client: DoccanoClient, pending: _Import, on_server: dict[str, list[dict]]) -> list[str]:
    """What doccano stored for this chunk, checked: every paragraph once, exact text, all annotations."""
    problems = []
    project, name = pending.project, pending.project["name"]
    for record in pending.chunk:
        examples = on_server.get(record.paragraph_id, [])
        if not examples:
            problems.append(f"{record.paragraph_id}: missing in {name!r} after the import; push again")
        elif examples[0]["text"] != record.text:
            problems.append(f"{record.paragraph_id}: doccano stored different text in {name!r} "
                            f"(example {examples[0]['id']}); its offsets cannot be trusted")
    if pending.kind.part == "spans":
        problems += _verify_utf16_spans(client, pending, on_server)
    me = client.username
    for endpoint, expected in pending.kind.expected_counts(pending.chunk).items():
        after = Counter(client.label_counts(project["id"], endpoint).get(me, {}))
        added = after - Counter(pending.before[endpoint].get(me, {}))
        if added != expected:
            problems.append(f"doccano stored {sum(added.values())} {endpoint} in {name!r} where "
                            f"{sum(expected.values())} were sent; check the import there")
    return problems


def _verify_utf16_spans(client: DoccanoClient, pending: _Import, on_server: dict[str, list[dict]]) -> list[str]:
    """Where UTF-16 and code points differ (text outside the BMP), the spans doccano stored, read back.

    These are the examples whose spans the browser would draw shifted if any offset went wrong;
    every other example has the same offsets in both units, and the label counts cover it.
    """
    astral = [(r, on_server[r.paragraph_id]) for r in pending.chunk if not is_bmp(r.text) and on_server.get(r.paragraph_id)]
    if not astral:
        return []
    project, me = pending.project, client.me()["id"]
    label_of = {t["id"]: t["text"] for t in client.label_types(project["id"], SPAN_TYPES)}
    problems = []
    for record, examples in astral:
        stored = {(s["start_offset"], s["end_offset"], label_of.get(s["label"]))
                  for s in client.annotations(project["id"], examples[0]["id"], SPANS) if s["user"] == me}
        sent = {(e["start_offset"], e["end_offset"], e["label"]) for e in to_relation_example(record)["entities"]}
        if stored != sent:
            problems.append(f"{record.paragraph_id}: doccano stored other span offsets in {project['name']!r} "
                            f"(example {examples[0]['id']}) than were sent in UTF-16 units; check the import there")
    return problems


# -- pull -----------------------------------------------------------------------------------------------


@dataclass
class PullReport:
    examples: int = 0
    counts: Counter = field(default_factory=Counter)  # new / replaced / unchanged
    problems: list[str] = field(default_factory=list)


def pull(client: DoccanoClient, store: Store, config: Config, confirmed_only: bool = True) -> PullReport:
    """Store the annotations of (confirmed) examples as gold, each checked against its stored paragraph.

    Collaborative projects hold one shared copy per example (annotator `*`); otherwise each
    annotator's work is stored under their name, never merged with anyone else's.
    """
    report = PullReport()
    projects = find_projects(client, config)
    exports = {kind: client.start_export(project["id"], confirmed_only) for kind, project in projects.items()}
    for kind, project in projects.items():
        name = project["name"]
        files = client.download_export(project["id"], exports[kind])
        wanted = [e.get("paragraph_id", "") for examples in files.values() for e in examples]
        stored = store.paragraph_records(wanted)
        entries = []
        for user, examples in files.items():
            annotator = COLLABORATIVE if project["collaborative_annotation"] else user
            for example in examples:
                report.examples += 1
                paragraph = stored.get(example.get("paragraph_id", ""))
                if paragraph is None:
                    report.problems.append(f"{name!r} example {example['id']}: paragraph "
                                           f"{example.get('paragraph_id')!r} is not in this workspace; skipped")
                    continue
                try:
                    record = kind.from_example(example, paragraph)
                except AnnopipeError as err:
                    report.problems.append(f"{name!r} example {example['id']}: {err}")
                    continue
                entries.append(GoldEntry(record, kind.part, origin(client, project), annotator, example["id"]))
        report.counts.update({k: n for k, n in store.add_gold(entries).items() if n})
    return report


# -- status -------------------------------------------------------------------------------------------


def status(client: DoccanoClient, store: Store, config: Config) -> list[dict]:
    """Per project: examples in doccano, confirmed, pulled into this workspace, still pending."""
    rows = []
    for project in find_projects(client, config).values():
        total = client.count_examples(project["id"])
        confirmed = client.count_examples(project["id"], confirmed=True)
        rows.append({"project": project["name"], "url": origin(client, project), "pushed": total,
                     "confirmed": confirmed, "pulled": store.count_gold(origin(client, project)),
                     "pending": total - confirmed})
    return rows
