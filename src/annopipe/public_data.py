"""The public political-domain evaluation sets, CrossNER and CrossRE politics, as annopipe records.

They give model zero a score on data nobody in this project annotated. Each sentence becomes a
one-paragraph document of its own (so splits by document stay possible) whose text is its tokens
joined by single spaces, so every entity and relation keeps exact offsets. Ids derive from the file
name and sentence number (CrossNER) or `doc_key` (CrossRE), so they are the same on every run.

Entity scores need no function here: the span part of `annopipe.evaluation.evaluate` counts exact
(label, start, end) matches of these token-aligned spans, which is what seqeval counts in its default
(conlleval) mode; tests/test_public_data.py checks the two agree.

Only train and dev are read: the test splits are kept back for independent evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from annopipe.documents import content_hash
from annopipe.errors import AnnopipeError
from annopipe.evaluation import Tally, evaluate
from annopipe.records import Record, Relation, Span, check_record

DATA_ROOT = Path(__file__).parents[2].parent / "shared" / "data"
SPLITS = ("train", "dev")

CROSSNER_TO_PROJECT: dict[str, str | None] = {
    "politician": "PERSON",
    "person": "PERSON",
    "organisation": "ORG",
    "politicalparty": "ORG",
    "country": "GPE",
    # CrossNER's "location" includes cities, which the project calls GPE: mapping it to LOC costs
    # model zero some recall on cities that it rightly tags GPE.
    "location": "LOC",
    "event": "EVENT",
    "election": "EVENT",
    "misc": None,  # dropped: it mixes nationalities, ideologies, titles and more
}

CROSSRE_RELATION_LABELS = (
    "related-to", "artifact", "cause-effect", "compare", "general-affiliation", "named", "opposite", "origin",
    "part-of", "physical", "role", "social", "temporal", "topic", "type-of", "usage", "win-defeat",
)
"""CrossRE's 17 relation labels, in the order of its released code (`RELATION_LABELS` in its .env)."""

Entity = tuple[int, int, str]
"""(first token, last token inclusive, label) of one entity in a sentence."""


def _sentence_record(key: str, tokens: list[str], entities: list[Entity], relations: list[list], source: str) -> Record:
    """One sentence as a one-paragraph document; raises ValueError for token indices outside it."""
    starts, position = [], 0
    for token in tokens:
        starts.append(position)
        position += len(token) + 1
    text = " ".join(tokens)

    def offsets(first: int, last: int) -> tuple[int, int]:
        if not 0 <= first <= last < len(tokens):
            raise ValueError(f"token span [{first}, {last}] lies outside the sentence ({len(tokens)} tokens)")
        return starts[first], starts[last] + len(tokens[last])

    spans = []
    for first, last, label in entities:
        start, end = offsets(first, last)
        spans.append(Span(start, end, label, text[start:end]))
    doc_id = content_hash(key)
    return Record(
        doc_id=doc_id, paragraph_id=f"{doc_id}:0", paragraph_hash=content_hash(text), kind="paragraph",
        start=0, end=len(text), text=text, source=source, spans=spans,
        relations=[Relation(offsets(hs, he), offsets(ts, te), label) for hs, he, ts, te, label, *_ in relations],
    )


def _checked(record: Record, where: str) -> Record:
    problems = check_record(record)
    if problems:
        raise AnnopipeError(f"{where}: {problems[0]}; restore the file from the original release")
    return record


def _lines(path: Path) -> list[str]:
    """The file's lines, split on \\n only (a token may hold any other character), without \\r."""
    try:
        return [line.rstrip("\r") for line in path.read_text(encoding="utf-8").split("\n")]
    except OSError as err:
        raise AnnopipeError(f"{path}: cannot read ({err.strerror}); check the path") from None
    except UnicodeDecodeError as err:
        raise AnnopipeError(f"{path}: not UTF-8 (byte offset {err.start}); restore the file from the original "
                            "release") from None


def bio_entities(tags: list[str]) -> list[Entity]:
    """Entities of an IOB2 tag sequence, chunked as seqeval's default (conlleval) mode does.

    B-X always starts an entity; I-X continues the entity before it only if that is an X, and
    otherwise (after O or another type) starts one, so no tagged token is ever lost.
    """
    entities: list[list] = []
    open_label = None
    for index, tag in enumerate(tags):
        prefix, label = tag[:2], tag[2:]
        if tag == "O":
            open_label = None
            continue
        if prefix == "I-" and label == open_label:
            entities[-1][1] = index
        else:
            entities.append([index, index, label])
        open_label = label
    return [(first, last, label) for first, last, label in entities]


def _valid_tag(tag: str) -> bool:
    return tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)


def read_crossner(path: Path) -> list[Record]:
    """CrossNER sentences (`token<TAB>tag` lines, IOB2, a blank line after each) with their entities."""
    sentences: list[tuple[int, list[str], list[str]]] = []  # first line number, tokens, tags
    fresh = True
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            fresh = True
            continue
        token, tab, tag = line.partition("\t")
        if not (tab and token and _valid_tag(tag)):
            raise AnnopipeError(f"{path}:{number}: expected `token<TAB>tag` with tag O, B-X or I-X, got {line!r}; "
                                "restore the file from the CrossNER release")
        if fresh:
            sentences.append((number, [], []))
            fresh = False
        sentences[-1][1].append(token)
        sentences[-1][2].append(tag)
    return [
        _checked(_sentence_record(f"crossner:{path.name}:{i}", tokens, bio_entities(tags), [], f"{path.name}:{first}"),
                 f"{path}:{first}")
        for i, (first, tokens, tags) in enumerate(sentences)
    ]


def read_crossre(path: Path) -> list[Record]:
    """CrossRE sentences (JSON lines) with their entities and directed relations, all of them kept.

    A pair of entities may carry several relations with different labels; each is its own Relation.
    """
    records: list[Record] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
            key = data["doc_key"]
            record = _sentence_record(f"crossre:{key}", data["sentence"], data["ner"], data["relations"],
                                      f"{path.name}:{number}")
        except json.JSONDecodeError as err:
            raise AnnopipeError(f"{where}: not JSON ({err.msg}); restore the file from the CrossRE release") from None
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise AnnopipeError(f"{where}: not a CrossRE sentence ({type(err).__name__}: {err}); "
                                "restore the file from the CrossRE release") from None
        if key in seen:
            raise AnnopipeError(f"{where}: doc_key {key!r} already used on line {seen[key]}; ids would clash")
        seen[key] = number
        records.append(_checked(record, where))
    return records


_READERS: dict[str, tuple[str, Callable[[Path], list[Record]]]] = {
    "crossner": ("crossner_politics/{split}.txt", read_crossner),
    "crossre": ("crossre_politics/politics-{split}.json", read_crossre),
}


def load_public(name: str, split: str, root: Path = DATA_ROOT) -> list[Record]:
    """One split ("train" or "dev") of "crossner" or "crossre" politics, read from the shared data folder."""
    if name not in _READERS:
        raise AnnopipeError(f"unknown public data set {name!r}; choose one of {', '.join(_READERS)}")
    if split not in SPLITS:
        raise AnnopipeError(f"split {split!r} of {name} is not available: use 'train' or 'dev' "
                            "(the test splits are kept back for independent evaluation)")
    if not root.is_dir():
        raise AnnopipeError(f"{root}: public data folder not found; it is expected to hold crossner_politics/ and "
                            "crossre_politics/ (see shared/data/README.md beside the project)")
    template, reader = _READERS[name]
    return reader(root / template.format(split=split))


def map_labels(records: Iterable[Record], mapping: dict[str, str | None]) -> list[Record]:
    """Copies with span labels mapped; spans mapped to None go, and so do relations touching them.

    A label missing from `mapping` is an error rather than silently dropped, so that a mapping
    written for one data set is not quietly applied to another's labels.
    """
    out = []
    for record in records:
        unknown = sorted({s.label for s in record.spans} - mapping.keys())
        if unknown:
            raise AnnopipeError(f"{record.source or record.paragraph_id}: span label {unknown[0]!r} is not in the "
                                "label mapping; add it (map it to None to drop such spans)")
        spans = [replace(s, label=label) for s in record.spans if (label := mapping[s.label]) is not None]
        kept = {s.key for s in spans}
        relations = [r for r in record.relations if r.head in kept and r.tail in kept]
        out.append(replace(record, spans=spans, relations=relations, models=dict(record.models)))
    return out


def relation_scores(gold: list[Record], predicted: dict[str, Record], labels: list[str]) -> dict:
    """CrossRE-style relation scores with gold entities given; `predicted` is keyed by paragraph id.

    A predicted relation is right iff its head offsets, tail offsets and label equal a gold one's
    (directed, as CrossRE treats every label); a paragraph missing from `predicted` has no
    predictions. Macro figures are the mean over the labels in `labels` that occur in the gold,
    as CrossRE's released evaluate.py computes its macro-F1 (labels with no gold support are
    left out). Micro figures count every relation, including predictions with a label outside
    `labels` (always wrong). Unlike CrossRE's classifier setting, which is only asked about
    entity pairs that hold a gold relation, a prediction on any other pair counts as wrong here.
    """
    tallies = {label: Tally() for label in labels}
    total = Tally()
    for record in gold:
        stray = [r.label for r in record.relations if r.label not in tallies]
        if stray:
            raise AnnopipeError(f"{record.source or record.paragraph_id}: gold relation label {stray[0]!r} is not "
                                "among the labels scored; pass the data set's full label set")
        prediction = predicted.get(record.paragraph_id)
        gold_items = {(r.head, r.tail, r.label) for r in record.relations}
        predicted_items = {(r.head, r.tail, r.label) for r in prediction.relations} if prediction else set()
        for item in gold_items | predicted_items:
            hit_gold, hit_predicted = item in gold_items, item in predicted_items
            for tally in (tallies.get(item[-1]), total):
                if tally is not None:
                    tally.tp += hit_gold and hit_predicted
                    tally.fn += hit_gold and not hit_predicted
                    tally.fp += hit_predicted and not hit_gold
    per_label = {label: tallies[label].scores() for label in labels}
    supported = [scores for scores in per_label.values() if scores["support"]]
    macro = {
        key: round(sum(scores[key] for scores in supported) / len(supported), 4) if supported else 0.0
        for key in ("precision", "recall", "f1")
    }
    return {"micro": total.scores(), "macro": macro, "per_label": per_label}


def public_gold(name: str, split: str) -> list[Record]:
    """A public split as gold for `annopipe evaluate`: CrossNER with its labels mapped to the
    project's, CrossRE as it is (its 17 relation labels are not the project's)."""
    if name == "crossner":
        return map_labels(load_public(name, split), CROSSNER_TO_PROJECT)
    return load_public(name, split)


def score_public(name: str, gold: list[Record], predicted: dict[str, Record]) -> dict:
    """Scores as each public data set defines its task: CrossNER's entities only, of the kinds its
    gold annotates (predictions of other labels are not counted wrong); CrossRE's relations by
    its own labels, micro and macro (`relation_scores`)."""
    if name == "crossre":
        return {"relations": relation_scores(gold, predicted, list(CROSSRE_RELATION_LABELS))}
    labels = {s.label for r in gold for s in r.spans}
    kept = {key: replace(r, spans=[s for s in r.spans if s.label in labels], relations=[], label=None)
            for key, r in predicted.items()}
    return {"spans": evaluate(gold, kept)["spans"]}
