"""Records ⇄ other tools' annotation formats, so gold and predictions can leave annopipe and come back.

Each format is a pair of pure converters (one record ⇄ one foreign example) plus file wrappers.
What a format cannot carry is dropped on export and says so below; model scores are never read
back (annotations coming back are gold; doccano's meta shows them to annotators). Ids travel where the format has room for them; an example
made elsewhere, without our ids, gets ids derived from its text, as `documents` would give a
one-paragraph document.

- doccano: relation-extraction JSONL with our ids as extra keys and the paragraph label as `label`;
  offsets in UTF-16 code units, as doccano counts them (see `doccano.convert`).
- prodigy: Prodigy's task JSONL (tokens, spans, relations, `accept`), our ids under `meta`.
- spacy: a binary DocBin; spans as `doc.ents`, the label in `doc.cats`, relations and ids in
  `doc.user_data["annopipe"]`. Spans must fall on spaCy token boundaries.
- conll: plain NER CoNLL, `token<TAB>IOB2-tag` for the non-space tokens, one sentence per paragraph,
  each opened by `-DOCSTART-<TAB>{ids, label and text as JSON}<TAB>O` and a blank line. CoNLL-2003
  readers (`datasets`' conll builder among them) skip `-DOCSTART-` lines; spaCy's `convert -c ner`,
  which splits documents only at its exact `-DOCSTART- -X- O O`, reads the line as a one-token
  sentence tagged O, so neither sees an entity that is not ours. (A sidecar file would hide the ids
  from spaCy as well, but an export stays one file.) No relations and no model versions; spans must fall
  on token boundaries. Files in the older `# key = value` layout still read.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import zlib
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from annopipe.atomic import atomic_path
from annopipe.doccano.convert import META_KEYS, dumps_jsonl, parse_relation_example, to_relation_example
from annopipe.documents import content_hash
from annopipe.errors import AnnopipeError
from annopipe.records import ParagraphLabel, Record, Relation, Span, check_record

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

FORMATS = ("doccano", "prodigy", "spacy", "conll")

_Entry = TypeVar("_Entry")

_CONLL_FIELDS = ("doc_id", "paragraph_id", "paragraph_hash", "kind", "start", "end", "source", "label", "text")
_CONLL_DOCSTART = "-DOCSTART-"
_CONLL_JSON_FIELDS = ("source", "text")
"""In the older `# key = value` layout, free-text values are JSON strings, so newlines and tabs in them
survive one comment line."""


def export_records(records: Iterable[Record], fmt: str, path: Path) -> int:
    """Write records in `fmt`, atomically (temp file, then rename); return how many were written.

    The whole file is built before anything is written, so a record that cannot be exported leaves
    no file behind.
    """
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise AnnopipeError(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    batch = list(records)
    for record in batch:
        problems = check_record(record)
        if problems:
            raise AnnopipeError(f"{record.paragraph_id}: cannot export ({problems[0]}); fix the record first")
    data = writer(batch)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return len(batch)


def import_records(path: Path, fmt: str) -> list[Record]:
    """Records from a file in `fmt`; any entry that is malformed or inconsistent is an error naming it."""
    reader = _READERS.get(fmt)
    if reader is None:
        raise AnnopipeError(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise AnnopipeError(f"{path}: cannot read ({err.strerror})") from None
    return reader(data, path)


# --- shared ---------------------------------------------------------------------------------------


def _ids(meta: dict, text: str) -> dict:
    """Our id fields from an example's metadata, derived from the text where the metadata lacks them."""
    doc_id = meta.get("doc_id", content_hash(text))
    return {
        "doc_id": doc_id,
        "paragraph_id": meta.get("paragraph_id", f"{doc_id}:0"),
        "paragraph_hash": meta.get("paragraph_hash", content_hash(text)),
        "kind": meta.get("kind", "paragraph"),
        "start": meta.get("start", 0),
        "end": meta.get("end", len(text)),
        "source": meta.get("source", ""),
        "models": dict(meta.get("models", {})),
    }


def _one_label(labels: list) -> ParagraphLabel | None:
    if not isinstance(labels, list):
        raise TypeError(f"paragraph labels must be a list, got {labels!r}")
    if len(labels) > 1:
        raise ValueError(f"{len(labels)} paragraph labels ({', '.join(map(str, labels))}); annopipe keeps at most one")
    return ParagraphLabel(labels[0]) if labels else None


def _checked(record: Record, where: str) -> Record:
    problems = check_record(record)
    if problems:
        raise AnnopipeError(f"{where}: {problems[0]}; fix the annotation and export it again")
    return record


def _parsed(parse: Callable[[_Entry], Record], entry: _Entry, where: str, fmt: str) -> Record:
    """Run a pure parser, turning what a malformed entry makes it raise into an error naming the entry."""
    try:
        record = parse(entry)
    except KeyError as err:
        raise AnnopipeError(f"{where}: not a {fmt} example (missing key {err}); fix or remove it") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise AnnopipeError(f"{where}: not a {fmt} example ({err}); fix or remove it") from None
    return _checked(record, where)


def _decoded(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise AnnopipeError(f"{path}: not UTF-8 (byte offset {err.start}); re-save the file as UTF-8") from None


def _read_jsonl(data: bytes, path: Path, fmt: str, parse: Callable[[dict], Record]) -> list[Record]:
    """Records from JSONL; lines are split on \\n only, so U+2028 or U+0085 inside a string stay put."""
    return [
        _parsed(lambda text: parse(json.loads(text)), line, f"{path}:{number}", fmt)
        for number, line in enumerate(_decoded(data, path).split("\n"), 1)
        if line.strip()
    ]


@cache
def _nlp() -> Language:
    """spaCy's rule-based English tokenizer, loaded once and only when a token-based format is used."""
    import spacy

    return spacy.blank("en")


def _aligned_doc(record: Record, fmt: str) -> Doc:
    """The record's text as a spaCy Doc with its spans as entities; a span off token boundaries is an error."""
    doc = _nlp().make_doc(record.text)
    ents = []
    for span in record.spans:
        ent = doc.char_span(span.start, span.end, span.label, alignment_mode="strict")
        if ent is None:
            problem = "does not start and end on spaCy token boundaries"
        elif fmt == "conll" and (ent[0].is_space or ent[-1].is_space):
            problem = "starts or ends with whitespace, which CoNLL drops"
        else:
            ents.append(ent)
            continue
        tokens = [t.text for t in doc.char_span(span.start, span.end, alignment_mode="expand") or ()]
        raise AnnopipeError(
            f"{record.paragraph_id}: span {span.start}-{span.end} {span.label} {span.text!r} {problem} "
            f"(tokens there: {tokens}); {fmt} is token-based, so correct the span "
            "or export to doccano or prodigy, which keep character offsets"
        )
    doc.ents = ents
    return doc


# --- doccano --------------------------------------------------------------------------------------


def _to_doccano(record: Record) -> dict:
    """doccano's relation-extraction example, with the paragraph label as a one-item `label` list."""
    return {**to_relation_example(record), "label": [record.label.label] if record.label else []}


def _from_doccano(example: dict) -> Record:
    text = example["text"]
    spans, relations = parse_relation_example(example, text)
    return Record(**_ids(example, text), text=text, spans=spans, relations=relations,
                  label=_one_label(example.get("label") or []))


def _write_doccano(records: list[Record]) -> bytes:
    return dumps_jsonl([_to_doccano(r) for r in records]).encode("ascii")


def _read_doccano(data: bytes, path: Path) -> list[Record]:
    return _read_jsonl(data, path, "doccano", _from_doccano)


# --- Prodigy --------------------------------------------------------------------------------------


def _hash32(value: str) -> int:
    """A signed 32-bit int, as Prodigy's hashes are, but stable across runs (unlike `hash()`)."""
    return int.from_bytes(hashlib.sha256(value.encode("utf-8")).digest()[:4], "big", signed=True)


def _to_prodigy(record: Record) -> dict:
    """A Prodigy task: relations name their spans by `head_span`/`child_span` and by the spans' last
    tokens (`head`/`child`), as `rel.manual` does. Token indices cover the span (Prodigy's tokens are
    spaCy's); the character offsets stay exact even where a span cuts through a token.
    """
    doc = _nlp().make_doc(record.text)
    starts = [t.idx for t in doc]
    spans = {
        s.key: {"start": s.start, "end": s.end, "token_start": bisect.bisect_right(starts, s.start) - 1,
                "token_end": bisect.bisect_right(starts, s.end - 1) - 1, "label": s.label}
        for s in record.spans
    }
    relations = [
        {"head": spans[r.head]["token_end"], "child": spans[r.tail]["token_end"], "head_span": spans[r.head],
         "child_span": spans[r.tail], "label": r.label}
        for r in record.relations
    ]
    accept = [record.label.label] if record.label else []
    input_hash = _hash32(record.text)
    ids = record.to_dict()
    return {
        "text": record.text,
        "tokens": [
            {"text": t.text, "start": t.idx, "end": t.idx + len(t.text), "id": t.i, "ws": bool(t.whitespace_)}
            for t in doc
        ],
        "spans": list(spans.values()),
        "relations": relations,
        "accept": accept,
        "meta": {key: ids[key] for key in META_KEYS},
        "_input_hash": input_hash,
        "_task_hash": _hash32(json.dumps([input_hash, list(spans.values()), relations, accept], sort_keys=True)),
    }


def _from_prodigy(example: dict) -> Record:
    """A record from a Prodigy task; a relation without `head_span`/`child_span` is matched by last token."""
    text = example["text"]
    spans = [Span(s["start"], s["end"], s["label"], text[s["start"] : s["end"]]) for s in example.get("spans", [])]
    by_last_token = {s["token_end"]: (s["start"], s["end"]) for s in example.get("spans", []) if "token_end" in s}
    relations = []
    for relation in example.get("relations", []):
        ends = []
        for end, token in (("head_span", "head"), ("child_span", "child")):
            key = (relation[end]["start"], relation[end]["end"]) if end in relation else by_last_token.get(relation[token])
            if key is None:
                raise ValueError(f"relation {relation['label']}: no span ends at token {relation[token]}")
            ends.append(key)
        relations.append(Relation(ends[0], ends[1], relation["label"]))
    return Record(
        **_ids(example.get("meta") or {}, text), text=text, spans=sorted(spans, key=lambda s: (s.start, s.end)),
        relations=relations, label=_one_label(example.get("accept") or []),
    )


def _write_prodigy(records: list[Record]) -> bytes:
    return "".join(json.dumps(_to_prodigy(r), ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def _read_prodigy(data: bytes, path: Path) -> list[Record]:
    return _read_jsonl(data, path, "prodigy", _from_prodigy)


# --- spaCy DocBin ---------------------------------------------------------------------------------


def _to_doc(record: Record) -> Doc:
    """A spaCy Doc: spans as entities, the label as the one category (1.0), the rest in user_data."""
    doc = _aligned_doc(record, "spacy")
    doc.cats = {record.label.label: 1.0} if record.label else {}
    ids = record.to_dict()
    doc.user_data["annopipe"] = {
        **{key: ids[key] for key in META_KEYS},
        "relations": [{"head": list(r.head), "tail": list(r.tail), "label": r.label} for r in record.relations],
    }
    return doc


def _from_doc(doc: Doc) -> Record:
    """A record from a Doc; categories at 1.0 (spaCy's mark for a gold category) give the label."""
    meta = doc.user_data.get("annopipe", {})
    return Record(
        **_ids(meta, doc.text), text=doc.text,
        spans=[Span(e.start_char, e.end_char, e.label_, e.text) for e in doc.ents],
        relations=[Relation(tuple(r["head"]), tuple(r["tail"]), r["label"]) for r in meta.get("relations", [])],
        label=_one_label([cat for cat, value in doc.cats.items() if value == 1.0]),
    )


def _write_spacy(records: list[Record]) -> bytes:
    from spacy.tokens import DocBin

    return DocBin(docs=[_to_doc(r) for r in records], store_user_data=True).to_bytes()


def _read_spacy(data: bytes, path: Path) -> list[Record]:
    from spacy.tokens import DocBin

    try:
        docs = list(DocBin(store_user_data=True).from_bytes(data).get_docs(_nlp().vocab))
    except (ValueError, KeyError, TypeError, zlib.error) as err:
        raise AnnopipeError(f"{path}: not a spaCy DocBin file ({err}); pass a .spacy file") from None
    return [_parsed(_from_doc, doc, f"{path}: doc {number}", "spacy") for number, doc in enumerate(docs, 1)]


# --- CoNLL ----------------------------------------------------------------------------------------


def _conll_meta(record: Record) -> str:
    """The ids, label and text as one JSON column: ASCII only and with every space escaped, so no
    reader splits it and no line-ending convention breaks it.
    """
    values = {**record.to_dict(), "label": record.label.label if record.label else None}
    meta = {key: values[key] for key in _CONLL_FIELDS if values[key] is not None}
    return json.dumps(meta, ensure_ascii=True, separators=(",", ":")).replace(" ", "\\u0020")


def _to_conll(record: Record) -> str:
    """One paragraph: the `-DOCSTART-` line with our ids, a blank line, then `token<TAB>IOB2-tag` lines
    for the non-space tokens. The blank line keeps the id line a sentence of its own in spaCy's
    converter, which would otherwise take the JSON for its tag. Relations and model versions have no
    place in CoNLL and are dropped.
    """
    doc = _aligned_doc(record, "conll")
    tokens = [t for t in doc if not t.is_space]
    for token in tokens:
        if token.text.startswith(_CONLL_DOCSTART):
            raise AnnopipeError(
                f"{record.paragraph_id}: token {token.text!r} at offset {token.idx} would read as a document "
                "boundary in every CoNLL reader; export to doccano, prodigy or spacy instead"
            )
    lines = [f"{t.text}\t{t.ent_iob_}-{t.ent_type_}" if t.ent_type_ else f"{t.text}\tO" for t in tokens]
    return "\n".join([f"{_CONLL_DOCSTART}\t{_conll_meta(record)}\tO", "", *lines]) + "\n"


def _conll_header(lines: list[str]) -> tuple[dict, int]:
    """The metadata of one paragraph and where its tokens start: a `-DOCSTART-` line carrying JSON, or
    the `# key = value` comments that files written before it carry.
    """
    if lines[0].startswith(_CONLL_DOCSTART):
        fields = lines[0].split()
        try:
            meta = json.loads(fields[1]) if len(fields) == 3 else None
        except ValueError:
            meta = None
        if not isinstance(meta, dict) or not isinstance(meta.get("text"), str):
            raise ValueError(f"the {_CONLL_DOCSTART} line carries no ids and text (expected "
                             f"'{_CONLL_DOCSTART}<TAB>{{JSON}}<TAB>O'); annopipe needs them to restore offsets")
        return meta, 1
    meta: dict = {}
    body = 0
    while body < len(lines) and lines[body].startswith("# "):
        key, _, value = lines[body][2:].partition(" = ")
        meta[key] = json.loads(value) if key in _CONLL_JSON_FIELDS else int(value) if key in ("start", "end") else value
        body += 1
    if "text" not in meta:
        raise ValueError(f"no {_CONLL_DOCSTART} line or '# text = ...' comment before the tokens; annopipe "
                         "needs the text to restore offsets")
    return meta, body


def _from_conll(lines: list[str]) -> Record:
    """A record from one paragraph's lines (header first); offsets come from finding each token in the
    text, left to right.

    An `I-` tag that continues no span starts one, as conlleval reads IOB1 files.
    """
    meta, body = _conll_header(lines)
    text, cursor, spans, open_label = meta["text"], 0, [], None
    for line in lines[body:]:
        token, tab, tag = line.partition("\t")
        if not tab or not (tag == "O" or tag[:2] in ("B-", "I-")):
            raise ValueError(f"expected 'token<TAB>tag' with tag O, B-X or I-X, got {line!r}")
        start = text.find(token, cursor)
        if start < 0 or text[cursor:start].strip():
            raise ValueError(f"token {token!r} is not the next word of the paragraph text after offset {cursor}")
        cursor = start + len(token)
        if tag[:2] == "I-" and tag[2:] == open_label:
            spans[-1][1] = cursor
        elif tag != "O":
            spans.append([start, cursor, tag[2:]])
        open_label = None if tag == "O" else tag[2:]
    return Record(
        **_ids(meta, text), text=text, spans=[Span(s, e, label, text[s:e]) for s, e, label in spans],
        label=_one_label([meta["label"]] if "label" in meta else []),
    )


def _write_conll(records: list[Record]) -> bytes:
    return "\n".join(_to_conll(r) for r in records).encode("utf-8")


def _conll_blocks(text: str) -> list[tuple[int, list[str]]]:
    """Each paragraph's non-blank lines, with the number of its first line. A paragraph starts at a
    `-DOCSTART-` line and runs to the next (blank lines in it are sentence breaks for other readers);
    in the older layout it starts at a run of `# ` comments and ends at a blank line.
    """
    blocks: list[tuple[int, list[str]]] = []
    taking = False  # whether the last block takes the next non-blank line
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            taking = taking and blocks[-1][1][0].startswith(_CONLL_DOCSTART)
            continue
        if (not taking or line.startswith(_CONLL_DOCSTART)
                or line.startswith("# ") and not blocks[-1][1][-1].startswith("# ")):
            blocks.append((number, []))
            taking = True
        blocks[-1][1].append(line)
    return blocks


def _read_conll(data: bytes, path: Path) -> list[Record]:
    """An error names the line where its paragraph starts."""
    blocks = _conll_blocks(_decoded(data, path))
    return [_parsed(_from_conll, lines, f"{path}:{first}", "conll") for first, lines in blocks]


_WRITERS: dict[str, Callable[[list[Record]], bytes]] = {
    "doccano": _write_doccano, "prodigy": _write_prodigy, "spacy": _write_spacy, "conll": _write_conll,
}
_READERS: dict[str, Callable[[bytes, Path], list[Record]]] = {
    "doccano": _read_doccano, "prodigy": _read_prodigy, "spacy": _read_spacy, "conll": _read_conll,
}
