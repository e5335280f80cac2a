"""Referring words resolved to the named actors of a paragraph (annopipe.nlp.references), and the
candidate pairs they add for the trained relation classifier; on hand-built parses, no model loaded."""

from __future__ import annotations

from annopipe.nlp.references import ReferenceResolver, token_spans
from annopipe.nlp.relations import candidate_policy, doc_sentences, reference_candidates
from tests.test_relation_rules import RELATIONS, parse, span

RESOLVER = ReferenceResolver(RELATIONS)

# "Modi arrived in Tokyo. He was received by Ishiba."
VISIT = parse([
    ("Modi", 1, "nsubj", "PROPN", "Modi"), ("arrived", 1, "ROOT", "VERB", "arrive"), ("in", 1, "prep", "ADP", "in"),
    ("Tokyo", 2, "pobj", "PROPN", "Tokyo"), (".", 1, "punct", "PUNCT", "."),
    ("He", 7, "nsubjpass", "PRON", "he"), ("was", 7, "auxpass", "AUX", "be"), ("received", 7, "ROOT", "VERB", "receive"),
    ("by", 7, "agent", "ADP", "by"), ("Ishiba", 8, "pobj", "PROPN", "Ishiba"), (".", 7, "punct", "PUNCT", "."),
])
VISIT_SPANS = [span(VISIT, 0, 0, "PERSON", None), span(VISIT, 3, 3, "GPE", None), span(VISIT, 9, 9, "PERSON", None)]

# "Kazakhstan and Uzbekistan met in Astana. Both sides backed restraint."
MEETING = parse([
    ("Kazakhstan", 3, "nsubj", "PROPN", "Kazakhstan"), ("and", 0, "cc", "CCONJ", "and"),
    ("Uzbekistan", 0, "conj", "PROPN", "Uzbekistan"), ("met", 3, "ROOT", "VERB", "meet"), ("in", 3, "prep", "ADP", "in"),
    ("Astana", 4, "pobj", "PROPN", "Astana"), (".", 3, "punct", "PUNCT", "."),
    ("Both", 8, "det", "DET", "both"), ("sides", 9, "nsubj", "NOUN", "side"), ("backed", 9, "ROOT", "VERB", "back"),
    ("restraint", 9, "dobj", "NOUN", "restraint"), (".", 9, "punct", "PUNCT", "."),
])
MEETING_SPANS = [span(MEETING, 0, 0, "GPE", None), span(MEETING, 2, 2, "GPE", None), span(MEETING, 5, 5, "GPE", None),
                 span(MEETING, 10, 10, "TOPIC", None)]


def they_after(actors: list[str]) -> tuple:
    """'A, B and C met. They backed sanctions.' with the actors given, and its spans."""
    rows, spans_at = [], []
    for i, name in enumerate(actors):
        if i:
            rows.append(("and" if i == len(actors) - 1 else ",", len(rows) - 1, "cc" if i == len(actors) - 1 else "punct",
                         "CCONJ" if i == len(actors) - 1 else "PUNCT", ","))
        spans_at.append(len(rows))
        rows.append((name, 0 if i else None, "conj" if i else "nsubj", "PROPN", name))
    met = len(rows)
    rows = [(w, met if h is None else h, d, p, lemma) for w, h, d, p, lemma in rows]
    rows += [("met", met, "ROOT", "VERB", "meet"), (".", met, "punct", "PUNCT", "."),
             ("They", met + 3, "nsubj", "PRON", "they"), ("backed", met + 3, "ROOT", "VERB", "back"),
             ("sanctions", met + 3, "dobj", "NOUN", "sanction"), (".", met + 3, "punct", "PUNCT", ".")]
    doc = parse(rows)
    return doc, [span(doc, i, i, "GPE", None) for i in spans_at] + [span(doc, met + 4, met + 4, "TOPIC", None)]


def resolved(doc, spans) -> list[tuple[str, list[str]]]:
    return [(doc.text[r.start : r.end], [a.text for a in r.antecedents]) for r in RESOLVER(doc, spans)]


def test_a_pronoun_stands_for_the_last_person_named_before_it():
    assert resolved(VISIT, VISIT_SPANS) == [("He", ["Modi"])]


def test_both_sides_are_the_last_two_actors_named_and_a_place_is_no_party():
    assert resolved(MEETING, MEETING_SPANS) == [("sides", ["Kazakhstan", "Uzbekistan"])]


def test_the_parties_of_the_last_meeting_win_when_the_caller_knows_them():
    sides = MEETING[8]
    parties = [MEETING_SPANS[2]]
    assert RESOLVER.resolve(sides, token_spans(MEETING, MEETING_SPANS), parties) == parties


def test_they_stands_for_a_small_group_but_not_for_a_long_list():
    doc, spans = they_after(["France", "Germany"])
    assert resolved(doc, spans) == [("They", ["France", "Germany"])]
    doc, spans = they_after(["France", "Germany", "Italy", "Spain"])
    assert resolved(doc, spans) == []


def test_nothing_named_before_means_nothing_resolved():
    assert resolved(VISIT, VISIT_SPANS[2:]) == []  # only Ishiba, after "He"
    assert resolved(MEETING, MEETING_SPANS[3:]) == []  # no actor at all


def test_a_reference_pairs_what_it_stands_for_with_the_spans_of_its_sentence():
    references = RESOLVER(VISIT, VISIT_SPANS)
    pairs = reference_candidates(VISIT.text, VISIT_SPANS, doc_sentences(VISIT), references, ["PERSON", "GPE"])
    assert [(p.head.text, p.tail.text) for p in pairs] == [("Modi", "Ishiba"), ("Ishiba", "Modi")]
    assert VISIT.text[pairs[0].start : pairs[0].end] == VISIT.text  # the context runs over both sentences
    assert reference_candidates(VISIT.text, VISIT_SPANS, doc_sentences(VISIT), references, ["ORG"]) == []
    taken = {(VISIT_SPANS[0].key, VISIT_SPANS[2].key)}
    again = reference_candidates(VISIT.text, VISIT_SPANS, doc_sentences(VISIT), references, None, taken)
    assert [(p.head.text, p.tail.text) for p in again] == [("Ishiba", "Modi")]


def test_only_a_policy_trained_with_references_adds_their_pairs():
    references = RESOLVER(MEETING, MEETING_SPANS)
    sentences = doc_sentences(MEETING)
    plain, with_references = (candidate_policy({"encoding": "paragraph", "references": flag}) for flag in (False, True))
    assert with_references.settings()["references"] and not plain.settings()["references"]
    before = plain.pairs(MEETING.text, MEETING_SPANS, [], sentences, ["GPE"], references)
    after = with_references.pairs(MEETING.text, MEETING_SPANS, [], sentences, ["GPE"], references)
    added = [(p.head.text, p.tail.text) for p in after[len(before):]]
    assert added == [("Kazakhstan", "restraint"), ("Uzbekistan", "restraint")]
