"""Records ⇄ doccano, Prodigy, spaCy and CoNLL files: round trips on the real gold, unicode, and clear refusals."""

import dataclasses
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annopipe.documents import content_hash
from annopipe.errors import AnnopipeError
from annopipe.formats import FORMATS, export_records, import_records
from annopipe.offsets import grapheme_boundaries
from annopipe.records import ParagraphLabel, Record, Relation, Span, read_jsonl
from tests.conftest import ROOT

GOLD = [record for path in sorted((ROOT / "corpora" / "gold").glob("*.jsonl")) for record in read_jsonl(path)]
TEXT = "Modi met Ishiba in Tokyo 🙂.\r\nCafe\u0301 talks went well."


def record(text=TEXT, spans=(), relations=(), label=None, models=None) -> Record:
    return Record("d", "d:3", content_hash(text), "bullet", 10, 10 + len(text), text, source="briefs/a.txt",
                  spans=list(spans), relations=list(relations), label=label, models=models or {})


def span(needle, label, score=None, text=TEXT) -> Span:
    start = text.index(needle)
    return Span(start, start + len(needle), label, needle, score)


def as_imported(record: Record, fmt: str) -> Record:
    """What a format should give back: no scores, spans in text order, no relations or models in CoNLL."""
    return dataclasses.replace(
        record,
        spans=sorted((dataclasses.replace(s, score=None) for s in record.spans), key=lambda s: (s.start, s.end)),
        relations=[] if fmt == "conll" else [dataclasses.replace(r, score=None) for r in record.relations],
        label=record.label and ParagraphLabel(record.label.label),
        models={} if fmt == "conll" else record.models,
    )


def round_trip(records: list[Record], fmt: str, directory: Path) -> list[Record]:
    path = directory / f"out.{fmt}"
    assert export_records(iter(records), fmt, path) == len(records)
    assert [p.name for p in directory.iterdir()] == [path.name]  # no temporary left behind
    return import_records(path, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_gold_round_trips_through_every_format(fmt, tmp_path):
    assert len(GOLD) > 100 and any(r.relations for r in GOLD) and any(r.label for r in GOLD)
    assert round_trip(GOLD, fmt, tmp_path) == [as_imported(r, fmt) for r in GOLD]


@pytest.mark.parametrize("fmt", FORMATS)
def test_scores_are_dropped_and_models_kept_where_the_format_has_room(fmt, tmp_path):
    original = record(spans=[span("Modi", "PERSON", 0.9), span("Tokyo", "GPE", 0.8)],
                      relations=[Relation((0, 4), (19, 24), "MEETS_IN", 0.7)], label=ParagraphLabel("DIPLOMACY", 0.6),
                      models={"ner": "en_core_web_sm-3.8.0"})
    [back] = round_trip([original], fmt, tmp_path)
    assert back == as_imported(original, fmt)
    assert (back.models, back.relations) == (({}, []) if fmt == "conll" else (original.models, [back.relations[0]]))


_PIECES = ["🙂", "👩\u200d👩\u200d👧", "e\u0301", "\r\n", "\r", " ", "\t", "Kyiv", "中文", "\u2028", "\x85", ".", "'s"]
_TEXTS = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.text(st.characters(exclude_categories=("Cs",)), max_size=2)), max_size=12
).map("".join)


@st.composite
def records(draw) -> Record:
    """A record with spans on arbitrary non-overlapping character boundaries (tokens be damned)."""
    text = draw(_TEXTS)
    offsets = sorted(draw(st.lists(st.sampled_from(sorted(grapheme_boundaries(text))), unique=True, max_size=8)))
    labels = st.sampled_from(["GPE", "PERSON", "ORG"])
    spans = [Span(s, e, draw(labels), text[s:e], draw(st.none() | st.floats(0, 1)))
             for s, e in zip(offsets[::2], offsets[1::2])]
    pairs = st.lists(st.tuples(st.sampled_from(spans), st.sampled_from(spans)), max_size=3) if spans else st.just([])
    relations = [Relation(h.key, t.key, draw(labels)) for h, t in draw(pairs)]
    label = draw(st.none() | st.builds(ParagraphLabel, st.sampled_from(["DIPLOMACY", "OTHER"])))
    return record(text, spans, relations, label, models=draw(st.dictionaries(st.sampled_from(["ner", "rel"]), _TEXTS)))


@pytest.mark.parametrize("fmt", ["doccano", "prodigy"])
@settings(max_examples=60, deadline=None)
@given(batch=st.lists(records(), max_size=3))
def test_character_offset_formats_round_trip_any_unicode(fmt, batch):
    with tempfile.TemporaryDirectory() as directory:
        assert round_trip(batch, fmt, Path(directory)) == [as_imported(r, fmt) for r in batch]


@pytest.mark.parametrize("fmt", ["doccano", "prodigy"])
def test_an_imported_span_that_cuts_a_character_in_two_is_refused(fmt, tmp_path):
    """Half a flag or an emoji without its skin tone: one regional indicator is no character."""
    text = "Kyiv 🇺🇦 thanks 👍🏽 Warsaw."
    path = tmp_path / "in.jsonl"
    export_records([record(text=text, spans=[span("Kyiv", "GPE", text=text)])], fmt, path)
    example = json.loads(path.read_text(encoding="utf-8"))
    if fmt == "doccano":
        example["entities"][0]["end_offset"] = 7  # Kyiv + space + 🇺 in UTF-16 units, without the 🇦
    else:
        example["spans"][0]["end"] = 6  # Kyiv + space + 🇺 in code points
    path.write_text(json.dumps(example) + "\n", encoding="utf-8")
    with pytest.raises(AnnopipeError, match=r"in.jsonl:1: span 0-6 GPE 'Kyiv 🇺' cuts the character '🇺🇦' in two"):
        import_records(path, fmt)


@pytest.mark.parametrize("fmt", ["spacy", "conll"])
def test_token_formats_refuse_a_span_that_cuts_a_token(fmt, tmp_path):
    bad = record(spans=[span("Modi", "PERSON"), Span(10, 15, "PERSON", TEXT[10:15])])  # "shiba", inside "Ishiba"
    with pytest.raises(AnnopipeError, match=r"d:3: span 10-15 PERSON 'shiba' does not start and end on spaCy token"):
        export_records([bad], fmt, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_conll_refuses_a_span_ending_in_whitespace(tmp_path):
    with pytest.raises(AnnopipeError, match=r"span 19-29 GPE .* ends with whitespace, which CoNLL drops"):
        export_records([record(spans=[span("Tokyo 🙂.\r\n", "GPE")])], "conll", tmp_path / "out.conll")


def test_unknown_format_is_refused_both_ways(tmp_path):
    with pytest.raises(AnnopipeError, match=r"unknown format 'brat'; choose one of doccano, prodigy, spacy, conll"):
        export_records([record()], "brat", tmp_path / "out")
    with pytest.raises(AnnopipeError, match="unknown format 'brat'"):
        import_records(tmp_path / "out", "brat")


@pytest.mark.parametrize("fmt", ["doccano", "prodigy"])
def test_malformed_line_names_file_and_line(fmt, tmp_path):
    path = tmp_path / "in.jsonl"
    export_records([record(), record()], fmt, path)
    path.write_text(path.read_text(encoding="utf-8") + "\n{not json\n", encoding="utf-8")
    with pytest.raises(AnnopipeError, match=rf"in.jsonl:4: not a {fmt} example \(Expecting property name"):
        import_records(path, fmt)


def gold_entities(record: Record) -> list[tuple[str, str]]:
    """(label, text without whitespace) of each gold span in text order: what a token-based reader can see."""
    return [(s.label, "".join(s.text.split())) for s in sorted(record.spans, key=lambda s: s.start)]


def test_spacys_conll_converter_reads_exactly_our_entities(tmp_path):
    """`spacy convert -c ner` runs this converter: our id lines become one-token docs with no entity."""
    from spacy.training.converters import conll_ner_to_docs

    path = tmp_path / "gold.conll"
    export_records(GOLD, "conll", path)
    docs = list(conll_ner_to_docs(path.read_text(encoding="utf-8"), n_sents=1, no_print=True))
    id_docs = [d for d in docs if [t.text for t in d] == ["-DOCSTART-"]]
    paragraphs = [d for d in docs if [t.text for t in d] != ["-DOCSTART-"]]
    assert len(id_docs) == len(paragraphs) == len(GOLD) and not any(d.ents for d in id_docs)
    for record, doc in zip(GOLD, paragraphs, strict=True):
        assert "".join(t.text for t in doc) == "".join(record.text.split())
        assert [(e.label_, "".join(t.text for t in e)) for e in doc.ents] == gold_entities(record)
    assert sum(len(d.ents) for d in docs) == sum(len(r.spans) for r in GOLD) > 1000


def test_datasets_conll_builder_reads_exactly_our_entities_decoded_as_seqeval_does(tmp_path):
    """The `conll` builder that ships with `datasets` (no network); it skips `-DOCSTART-` lines."""
    import datasets

    from annopipe.public_data import bio_entities

    path = tmp_path / "gold.conll"
    export_records(GOLD, "conll", path)
    rows = datasets.load_dataset("conll", data_files=str(path), column_names=["tokens", "ner_tags"],
                                 cache_dir=str(tmp_path / "hf"), split="train")
    assert len(rows) == len(GOLD)
    for record, row in zip(GOLD, rows, strict=True):
        tokens = row["tokens"]
        assert "".join(tokens) == "".join(record.text.split())
        entities = [(label, "".join(tokens[first : last + 1])) for first, last, label in bio_entities(row["ner_tags"])]
        assert entities == gold_entities(record)


def test_conll_id_line_is_one_column_of_ascii_json(tmp_path):
    """Spaces, line separators and tabs in the text are escaped, so whitespace-splitting readers see 3 columns."""
    text = "Modi\u2028met\tIshiba \u00a0in Tokyo."
    original = record(text=text, spans=[span("Modi", "PERSON", text=text)])
    path = tmp_path / "out.conll"
    export_records([original], "conll", path)
    lines = path.read_bytes().split(b"\n")
    assert lines[0].isascii() and lines[0].split()[0] == b"-DOCSTART-" and len(lines[0].split()) == 3
    assert lines[1:4] == [b"", b"Modi\tB-PERSON", b"met\tO"]
    assert import_records(path, "conll") == [as_imported(original, "conll")]


def test_conll_in_the_older_comment_layout_still_reads(tmp_path):
    path = tmp_path / "old.conll"
    path.write_text('# doc_id = d\n# paragraph_id = d:3\n# start = 10\n# end = 30\n# source = "a.txt"\n'
                    '# label = DIPLOMACY\n# text = "Modi met\\r\\nIshiba."\n'
                    'Modi\tB-PERSON\nmet\tO\nIshiba\tB-PERSON\n.\tO\n\n'
                    '# doc_id = e\n# text = "Tokyo"\nTokyo\tB-GPE\n', encoding="utf-8")
    first, second = import_records(path, "conll")
    assert (first.paragraph_id, first.start, first.source) == ("d:3", 10, "a.txt")
    assert first.label == ParagraphLabel("DIPLOMACY")
    assert first.text == "Modi met\r\nIshiba." and [s.text for s in first.spans] == ["Modi", "Ishiba"]
    assert (second.doc_id, second.spans) == ("e", [Span(0, 5, "GPE", "Tokyo")])


@pytest.mark.parametrize(("content", "line", "message"), [
    ("-DOCSTART-\t{\"text\":\"Modi\"}\tO\n\nModi\tB-PERSON\n\n-DOCSTART- -X- -X- O\n", 5,
     r"the -DOCSTART- line carries no ids and text"),
    ("Modi\tB-PERSON\n", 1, r"no -DOCSTART- line or '# text = \.\.\.' comment before the tokens"),
    ('# text = "Modi"\nModi\tB-PERSON\n\nModi\tB-PERSON\n', 4, r"no -DOCSTART- line or '# text = \.\.\.' comment"),
    ("-DOCSTART-\t{\"text\":\"Modi\"}\tO\n\nModi\tB-PERSON\nIshiba\tO\n", 1, r"token 'Ishiba' is not the next word"),
])
def test_conll_error_names_the_first_line_of_its_paragraph(content, line, message, tmp_path):
    path = tmp_path / "in.conll"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AnnopipeError, match=rf"in.conll:{line}: .*{message}"):
        import_records(path, "conll")


def test_conll_refuses_a_token_that_reads_as_a_document_boundary(tmp_path):
    text = "See -DOCSTART- here."
    with pytest.raises(AnnopipeError, match=r"d:3: token '-DOCSTART-' at offset 4 would read as a document boundary"):
        export_records([record(text=text)], "conll", tmp_path / "out.conll")


def test_unreadable_spacy_file_is_an_error(tmp_path):
    path = tmp_path / "in.spacy"
    path.write_bytes(b"not a docbin")
    with pytest.raises(AnnopipeError, match="in.spacy: not a spaCy DocBin file"):
        import_records(path, "spacy")


def test_doccano_relation_to_a_missing_entity_is_an_error(tmp_path):
    path = tmp_path / "in.jsonl"
    example = {"text": "Modi met Ishiba.", "entities": [{"id": 7, "start_offset": 0, "end_offset": 4, "label": "PERSON"}],
               "relations": [{"id": 1, "from_id": 7, "to_id": 8, "type": "MEETS_WITH"}]}
    path.write_text(json.dumps(example) + "\n", encoding="utf-8")
    with pytest.raises(AnnopipeError, match=r"in.jsonl:1: .*relation 1 MEETS_WITH points at a span that does not exist"):
        import_records(path, "doccano")


def test_prodigy_relation_to_a_missing_span_is_an_error(tmp_path):
    path = tmp_path / "in.jsonl"
    modi = {"start": 0, "end": 4, "token_start": 0, "token_end": 0, "label": "PERSON"}
    ishiba = {"start": 9, "end": 15, "token_start": 2, "token_end": 2, "label": "PERSON"}
    example = {"text": "Modi met Ishiba.", "spans": [modi],
               "relations": [{"head": 0, "child": 2, "head_span": modi, "child_span": ishiba, "label": "MEETS_WITH"}]}
    path.write_text(json.dumps(example) + "\n", encoding="utf-8")
    with pytest.raises(AnnopipeError, match=r"in.jsonl:1: relation MEETS_WITH: tail \[9, 15\] is not one of the"):
        import_records(path, "prodigy")


def test_two_paragraph_labels_in_doccano_are_an_error(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"text": "Talks.", "label": ["DIPLOMACY", "OTHER"]}) + "\n", encoding="utf-8")
    with pytest.raises(AnnopipeError, match=r"in.jsonl:1: .*2 paragraph labels \(DIPLOMACY, OTHER\)"):
        import_records(path, "doccano")


def test_foreign_prodigy_task_without_meta_gets_ids_from_its_text(tmp_path):
    """Data annotated in Prodigy alone: relations by last-token index only, no annopipe meta."""
    text = "Narendra Modi met Ishiba."
    example = {"text": text, "_input_hash": 1, "_task_hash": 2, "answer": "accept", "accept": ["DIPLOMACY"],
               "spans": [{"start": 0, "end": 13, "token_start": 0, "token_end": 1, "label": "PERSON"},
                         {"start": 18, "end": 24, "token_start": 3, "token_end": 3, "label": "PERSON"}],
               "relations": [{"head": 1, "child": 3, "label": "MEETS_WITH"}]}
    path = tmp_path / "prodigy.jsonl"
    path.write_text(json.dumps(example) + "\n", encoding="utf-8")
    [back] = import_records(path, "prodigy")
    digest = content_hash(text)
    assert back == Record(digest, f"{digest}:0", digest, "paragraph", 0, len(text), text,
                          spans=[Span(0, 13, "PERSON", "Narendra Modi"), Span(18, 24, "PERSON", "Ishiba")],
                          relations=[Relation((0, 13), (18, 24), "MEETS_WITH")], label=ParagraphLabel("DIPLOMACY"))


def test_prodigy_tasks_carry_tokens_and_stable_32_bit_hashes(tmp_path):
    original = record(spans=[span("Modi", "PERSON"), span("Ishiba", "PERSON")],
                      relations=[Relation((0, 4), (9, 15), "MEETS_WITH")])
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    export_records([original], "prodigy", first)
    export_records([original], "prodigy", second)
    assert first.read_bytes() == second.read_bytes()
    task = json.loads(first.read_text(encoding="utf-8"))
    assert all(-(2**31) <= task[key] < 2**31 for key in ("_input_hash", "_task_hash"))
    assert task["tokens"][2] == {"text": "Ishiba", "start": 9, "end": 15, "id": 2, "ws": True}
    assert task["relations"][0]["head"] == 0 and task["relations"][0]["child"] == 2
    assert task["meta"]["paragraph_id"] == "d:3"
