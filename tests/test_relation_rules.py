"""Fast tests of the stance-relation rule layer, on hand-built parses: no model is loaded.

Every rule in configs/relation_rules.yaml gets one sentence it must match, parsed by hand the way
en_core_web_sm parses it (ClearNLP labels, spaCy's `Doc(vocab, words=..., heads=..., deps=...)`,
as spaCy tests its own DependencyMatcher), so a rule broken by an edit fails here in seconds
instead of only in slow real-model runs. Beyond the table: conjuncts, collective subjects
("They declared joint opposition to hegemony"), near misses that must yield nothing, and the
de-duplication of `UnionRelationModel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
import spacy
from spacy.tokens import Doc

from annopipe.config import load_config
from annopipe.nlp.relations import RuleRelationExtractor, UnionRelationModel
from annopipe.records import Relation, Span
from tests.conftest import ROOT

RELATIONS = load_config(ROOT / "configs" / "annopipe.yaml").relations
RULES = {rule["name"]: rule for rule in RELATIONS.rules}
VOCAB = spacy.blank("en").vocab
EXTRACTOR = RuleRelationExtractor(RELATIONS, VOCAB)

# Tokens written without a space before them ("Russia's", "Moscow.").
_NO_SPACE_BEFORE = {".", ",", ";", ":", "'s"}


def parse(tokens: list[tuple[str, int, str, str, str]]) -> Doc:
    """A parsed Doc from (word, head index, dep, pos, lemma) rows; the root is its own head.

    Several trees in one list make several sentences (the parse sets the sentence starts)."""
    words, heads, deps, pos, lemmas = (list(column) for column in zip(*tokens))
    spaces = [i + 1 < len(words) and words[i + 1] not in _NO_SPACE_BEFORE for i in range(len(words))]
    return Doc(VOCAB, words=words, spaces=spaces, heads=heads, deps=deps, pos=pos, lemmas=lemmas)


def span(doc: Doc, first: int, last: int, label: str, score: float | None) -> Span:
    """The annopipe Span over words first..last (inclusive) of `doc`, in character offsets."""
    start, end = doc[first].idx, doc[last].idx + len(doc[last])
    return Span(start, end, label, doc.text[start:end], score)


def expected_score(rule: str, head: Span, tail: Span) -> float:
    """The YAML header's formula: the rule's prior times the lower of the two span scores (a span
    without a score counts as 1)."""
    prior = RULES[rule].get("confidence", 0.5)
    return round(prior * min(head.score or 1.0, tail.score or 1.0), 4)


def by_key(relations: list[Relation]) -> list[Relation]:
    return sorted(relations, key=lambda r: (r.head, r.tail, r.label))


@dataclass
class Case:
    """A sentence a rule must match: its parse, its spans by name (first word, last word, label,
    score), and the (head, tail) span names of each relation it must give, with the rule's label.
    For symmetric labels the head is the span mentioned first, whichever is the actor."""

    text: str
    tokens: list[tuple[str, int, str, str, str]]
    spans: dict[str, tuple[int, int, str, float | None]]
    expected: list[tuple[str, str]]
    marks: list = field(default_factory=list)

    def build(self) -> tuple[Doc, dict[str, Span]]:
        doc = parse(self.tokens)
        assert doc.text == self.text, "the hand-built parse must spell the case's sentence"
        return doc, {name: span(doc, *spec) for name, spec in self.spans.items()}


# One case per rule, keyed by rule name. Parses are en_core_web_sm's for these sentences.
CASES: dict[str, Case] = {
    "supports-verb": Case(
        "China supports multilateralism.",
        [("China", 1, "nsubj", "PROPN", "China"),
         ("supports", 1, "ROOT", "VERB", "support"),
         ("multilateralism", 1, "dobj", "NOUN", "multilateralism"),
         (".", 1, "punct", "PUNCT", ".")],
        {"china": (0, 0, "GPE", 0.9), "multilateralism": (2, 2, "TOPIC", 0.75)},
        [("china", "multilateralism")],
    ),
    "supports-verb-conjunct": Case(  # the subject of the first verb backs the second verb's object
        "Brazil attended the summit and endorsed the declaration.",
        [("Brazil", 1, "nsubj", "PROPN", "Brazil"),
         ("attended", 1, "ROOT", "VERB", "attend"),
         ("the", 3, "det", "DET", "the"),
         ("summit", 1, "dobj", "NOUN", "summit"),
         ("and", 1, "cc", "CCONJ", "and"),
         ("endorsed", 1, "conj", "VERB", "endorse"),
         ("the", 7, "det", "DET", "the"),
         ("declaration", 5, "dobj", "NOUN", "declaration"),
         (".", 1, "punct", "PUNCT", ".")],
        {"brazil": (0, 0, "GPE", 0.95), "summit": (2, 3, "EVENT", 0.9), "declaration": (6, 7, "LAW", 0.8)},
        [("brazil", "declaration")],  # attending the summit is no support
    ),
    "supports-passive": Case(
        "The resolution was backed by France.",
        [("The", 1, "det", "DET", "the"),
         ("resolution", 3, "nsubjpass", "NOUN", "resolution"),
         ("was", 3, "auxpass", "AUX", "be"),
         ("backed", 3, "ROOT", "VERB", "back"),
         ("by", 3, "agent", "ADP", "by"),
         ("France", 4, "pobj", "PROPN", "France"),
         (".", 3, "punct", "PUNCT", ".")],
        {"resolution": (0, 1, "LAW", 0.7), "france": (5, 5, "GPE", 0.99)},
        [("france", "resolution")],
    ),
    "supports-noun": Case(  # "cause" is in no span: the NORP span inside its noun phrase stands for it
        "Pakistan expressed support for the Palestinian cause.",
        [("Pakistan", 1, "nsubj", "PROPN", "Pakistan"),
         ("expressed", 1, "ROOT", "VERB", "express"),
         ("support", 1, "dobj", "NOUN", "support"),
         ("for", 2, "prep", "ADP", "for"),
         ("the", 6, "det", "DET", "the"),
         ("Palestinian", 6, "amod", "ADJ", "palestinian"),
         ("cause", 3, "pobj", "NOUN", "cause"),
         (".", 1, "punct", "PUNCT", ".")],
        {"pakistan": (0, 0, "GPE", 0.9), "palestinian": (5, 5, "NORP", 0.85)},
        [("pakistan", "palestinian")],
    ),
    "opposes-verb": Case(
        "Iran condemned the sanctions.",
        [("Iran", 1, "nsubj", "PROPN", "Iran"),
         ("condemned", 1, "ROOT", "VERB", "condemn"),
         ("the", 3, "det", "DET", "the"),
         ("sanctions", 1, "dobj", "NOUN", "sanction"),
         (".", 1, "punct", "PUNCT", ".")],
        {"iran": (0, 0, "GPE", 0.9), "sanctions": (3, 3, "TOPIC", 0.6)},
        [("iran", "sanctions")],
    ),
    "opposes-verb-conjunct": Case(
        "Venezuela attended the meeting and rejected the proposal.",
        [("Venezuela", 1, "nsubj", "PROPN", "Venezuela"),
         ("attended", 1, "ROOT", "VERB", "attend"),
         ("the", 3, "det", "DET", "the"),
         ("meeting", 1, "dobj", "NOUN", "meeting"),
         ("and", 1, "cc", "CCONJ", "and"),
         ("rejected", 1, "conj", "VERB", "reject"),
         ("the", 7, "det", "DET", "the"),
         ("proposal", 5, "dobj", "NOUN", "proposal"),
         (".", 1, "punct", "PUNCT", ".")],
        {"venezuela": (0, 0, "GPE", 0.9), "meeting": (2, 3, "EVENT", 0.8), "proposal": (6, 7, "TOPIC", 0.7)},
        [("venezuela", "proposal")],
    ),
    "opposes-passive": Case(
        "The plan was rejected by Germany.",
        [("The", 1, "det", "DET", "the"),
         ("plan", 3, "nsubjpass", "NOUN", "plan"),
         ("was", 3, "auxpass", "AUX", "be"),
         ("rejected", 3, "ROOT", "VERB", "reject"),
         ("by", 3, "agent", "ADP", "by"),
         ("Germany", 4, "pobj", "PROPN", "Germany"),
         (".", 3, "punct", "PUNCT", ".")],
        {"plan": (0, 1, "TOPIC", 0.65), "germany": (5, 5, "GPE", 0.95)},
        [("germany", "plan")],
    ),
    "opposes-refusal": Case(  # the refusal is the stance (the guideline's decided cases)
        "Turkey refused to support the sanctions.",
        [("Turkey", 1, "nsubj", "PROPN", "Turkey"),
         ("refused", 1, "ROOT", "VERB", "refuse"),
         ("to", 3, "aux", "PART", "to"),
         ("support", 1, "xcomp", "VERB", "support"),
         ("the", 5, "det", "DET", "the"),
         ("sanctions", 3, "dobj", "NOUN", "sanction"),
         (".", 1, "punct", "PUNCT", ".")],
        {"turkey": (0, 0, "GPE", 0.9), "sanctions": (5, 5, "TOPIC", 1.0)},
        [("turkey", "sanctions")],
    ),
    "opposes-against": Case(
        "Cuba voted against the resolution.",
        [("Cuba", 1, "nsubj", "PROPN", "Cuba"),
         ("voted", 1, "ROOT", "VERB", "vote"),
         ("against", 1, "prep", "ADP", "against"),
         ("the", 4, "det", "DET", "the"),
         ("resolution", 2, "pobj", "NOUN", "resolution"),
         (".", 1, "punct", "PUNCT", ".")],
        {"cuba": (0, 0, "GPE", 0.9), "resolution": (3, 4, "LAW", 0.8)},
        [("cuba", "resolution")],
    ),
    "opposes-noun": Case(
        "China expressed strong opposition to hegemony.",
        [("China", 1, "nsubj", "PROPN", "China"),
         ("expressed", 1, "ROOT", "VERB", "express"),
         ("strong", 3, "amod", "ADJ", "strong"),
         ("opposition", 1, "dobj", "NOUN", "opposition"),
         ("to", 3, "prep", "ADP", "to"),
         ("hegemony", 4, "pobj", "NOUN", "hegemony"),
         (".", 1, "punct", "PUNCT", ".")],
        {"china": (0, 0, "GPE", 0.9), "hegemony": (5, 5, "TOPIC", 0.7)},
        [("china", "hegemony")],
    ),
    "opposes-possessive-noun": Case(  # "expansion" is in no span: its compound NATO stands for it
        "Russia's opposition to NATO expansion is well known.",
        [("Russia", 2, "poss", "PROPN", "Russia"),
         ("'s", 0, "case", "PART", "'s"),
         ("opposition", 6, "nsubj", "NOUN", "opposition"),
         ("to", 2, "prep", "ADP", "to"),
         ("NATO", 5, "compound", "PROPN", "NATO"),
         ("expansion", 3, "pobj", "NOUN", "expansion"),
         ("is", 6, "ROOT", "AUX", "be"),
         ("well", 8, "advmod", "ADV", "well"),
         ("known", 6, "acomp", "VERB", "know"),
         (".", 6, "punct", "PUNCT", ".")],
        {"russia": (0, 0, "GPE", 0.9), "nato": (4, 4, "ORG", 0.85)},
        [("russia", "nato")],
    ),
    "meets-active": Case(
        "Modi met Putin in Moscow.",
        [("Modi", 1, "nsubj", "PROPN", "Modi"),
         ("met", 1, "ROOT", "VERB", "meet"),
         ("Putin", 1, "dobj", "PROPN", "Putin"),
         ("in", 1, "prep", "ADP", "in"),
         ("Moscow", 3, "pobj", "PROPN", "Moscow"),
         (".", 1, "punct", "PUNCT", ".")],
        {"modi": (0, 0, "PERSON", 0.9), "putin": (2, 2, "PERSON", 0.8), "moscow": (4, 4, "GPE", 0.95)},
        [("modi", "putin")],
    ),
    "meets-with": Case(
        "Lavrov spoke with Wang Yi.",
        [("Lavrov", 1, "nsubj", "PROPN", "Lavrov"),
         ("spoke", 1, "ROOT", "VERB", "speak"),
         ("with", 1, "prep", "ADP", "with"),
         ("Wang", 4, "compound", "PROPN", "Wang"),
         ("Yi", 2, "pobj", "PROPN", "Yi"),
         (".", 1, "punct", "PUNCT", ".")],
        {"lavrov": (0, 0, "PERSON", 0.9), "wang": (3, 4, "PERSON", 0.7)},
        [("lavrov", "wang")],
    ),
    "meets-passive": Case(  # the actor is Xi, but MEETS_WITH is symmetric: Lula, mentioned first, is the head
        "Lula was received by Xi Jinping.",
        [("Lula", 2, "nsubjpass", "PROPN", "Lula"),
         ("was", 2, "auxpass", "AUX", "be"),
         ("received", 2, "ROOT", "VERB", "receive"),
         ("by", 2, "agent", "ADP", "by"),
         ("Xi", 5, "compound", "PROPN", "Xi"),
         ("Jinping", 3, "pobj", "PROPN", "Jinping"),
         (".", 2, "punct", "PUNCT", ".")],
        {"lula": (0, 0, "PERSON", 0.9), "xi": (4, 5, "PERSON", 0.8)},
        [("lula", "xi")],
    ),
    "meets-talks": Case(
        "Putin held talks with Erdogan.",
        [("Putin", 1, "nsubj", "PROPN", "Putin"),
         ("held", 1, "ROOT", "VERB", "hold"),
         ("talks", 1, "dobj", "NOUN", "talk"),
         ("with", 2, "prep", "ADP", "with"),
         ("Erdogan", 3, "pobj", "PROPN", "Erdogan"),
         (".", 1, "punct", "PUNCT", ".")],
        {"putin": (0, 0, "PERSON", 0.9), "erdogan": (4, 4, "PERSON", 0.75)},
        [("putin", "erdogan")],
    ),
    "meets-visit-noun": Case(
        "Modi paid a visit to Japan.",
        [("Modi", 1, "nsubj", "PROPN", "Modi"),
         ("paid", 1, "ROOT", "VERB", "pay"),
         ("a", 3, "det", "DET", "a"),
         ("visit", 1, "dobj", "NOUN", "visit"),
         ("to", 3, "prep", "ADP", "to"),
         ("Japan", 4, "pobj", "PROPN", "Japan"),
         (".", 1, "punct", "PUNCT", ".")],
        {"modi": (0, 0, "PERSON", 0.9), "japan": (5, 5, "GPE", 0.95)},
        [("modi", "japan")],
    ),
    "meets-possessive-visit": Case(
        "Macron's visit to China ended on Friday.",
        [("Macron", 2, "poss", "PROPN", "Macron"),
         ("'s", 0, "case", "PART", "'s"),
         ("visit", 5, "nsubj", "NOUN", "visit"),
         ("to", 2, "prep", "ADP", "to"),
         ("China", 3, "pobj", "PROPN", "China"),
         ("ended", 5, "ROOT", "VERB", "end"),
         ("on", 5, "prep", "ADP", "on"),
         ("Friday", 6, "pobj", "PROPN", "Friday"),
         (".", 5, "punct", "PUNCT", ".")],
        {"macron": (0, 0, "PERSON", 0.9), "china": (4, 4, "GPE", 0.8), "friday": (7, 7, "DATE", 0.9)},
        [("macron", "china")],
    ),
    "cooperates-with": Case(
        "India will cooperate with Japan on infrastructure.",
        [("India", 2, "nsubj", "PROPN", "India"),
         ("will", 2, "aux", "AUX", "will"),
         ("cooperate", 2, "ROOT", "VERB", "cooperate"),
         ("with", 2, "prep", "ADP", "with"),
         ("Japan", 3, "pobj", "PROPN", "Japan"),
         ("on", 2, "prep", "ADP", "on"),
         ("infrastructure", 5, "pobj", "NOUN", "infrastructure"),
         (".", 2, "punct", "PUNCT", ".")],
        {"india": (0, 0, "GPE", 0.9), "japan": (4, 4, "GPE", 0.85), "infrastructure": (6, 6, "TOPIC", 0.6)},
        [("india", "japan")],
    ),
    "cooperates-joint-subject": Case(  # matched both ways through the conjuncts, kept once (symmetric)
        "China and Russia agreed to deepen ties.",
        [("China", 3, "nsubj", "PROPN", "China"),
         ("and", 0, "cc", "CCONJ", "and"),
         ("Russia", 0, "conj", "PROPN", "Russia"),
         ("agreed", 3, "ROOT", "VERB", "agree"),
         ("to", 5, "aux", "PART", "to"),
         ("deepen", 3, "xcomp", "VERB", "deepen"),
         ("ties", 5, "dobj", "NOUN", "tie"),
         (".", 3, "punct", "PUNCT", ".")],
        {"china": (0, 0, "GPE", 0.9), "russia": (2, 2, "GPE", 0.8)},
        [("china", "russia")],
    ),
}


def expected_relations(rule: str, spans: dict[str, Span], pairs: list[tuple[str, str]]) -> list[Relation]:
    label = RULES[rule]["label"]
    return [Relation(spans[h].key, spans[t].key, label, expected_score(rule, spans[h], spans[t])) for h, t in pairs]


def test_every_rule_has_a_fast_case():
    """A rule added to relation_rules.yaml without a case here fails the suite."""
    assert set(CASES) == set(RULES), f"rules without a case: {sorted(set(RULES) - set(CASES))}; " \
                                      f"cases without a rule: {sorted(set(CASES) - set(RULES))}"


@pytest.mark.parametrize("rule", [pytest.param(name, id=name, marks=case.marks) for name, case in CASES.items()])
def test_rule_matches_the_sentence_it_was_written_for(rule):
    """The rule alone gives exactly the expected relations, each scored prior × lower span score;
    with all the rules loaded those relations are still found."""
    case = CASES[rule]
    doc, spans = case.build()
    expected = expected_relations(rule, spans, case.expected)

    alone = RuleRelationExtractor(replace(RELATIONS, rules=[RULES[rule]]), VOCAB)
    (relations,) = alone([doc], [list(spans.values())])
    assert by_key(relations) == by_key(expected)

    (together,) = EXTRACTOR([doc], [list(spans.values())])
    assert {(r.head, r.tail, r.label) for r in expected} <= {(r.head, r.tail, r.label) for r in together}


# Stances the text denies or only supposes (the guideline): en_core_web_sm's parses of the sentences.
UNASSERTED = {
    "Turkey does not support the sanctions.": [
        ("Turkey", 3, "nsubj", "PROPN", "Turkey"), ("does", 3, "aux", "AUX", "do"), ("not", 3, "neg", "PART", "not"),
        ("support", 3, "ROOT", "VERB", "support"), ("the", 5, "det", "DET", "the"),
        ("sanctions", 3, "dobj", "NOUN", "sanction"), (".", 3, "punct", "PUNCT", ".")],
    "Turkey might support the sanctions.": [
        ("Turkey", 2, "nsubj", "PROPN", "Turkey"), ("might", 2, "aux", "AUX", "might"),
        ("support", 2, "ROOT", "VERB", "support"), ("the", 4, "det", "DET", "the"),
        ("sanctions", 2, "dobj", "NOUN", "sanction"), (".", 2, "punct", "PUNCT", ".")],
    "Germany expressed no support for the sanctions.": [
        ("Germany", 1, "nsubj", "PROPN", "Germany"), ("expressed", 1, "ROOT", "VERB", "express"),
        ("no", 3, "det", "DET", "no"), ("support", 1, "dobj", "NOUN", "support"), ("for", 3, "prep", "ADP", "for"),
        ("the", 6, "det", "DET", "the"), ("sanctions", 4, "pobj", "NOUN", "sanction"), (".", 1, "punct", "PUNCT", ".")],
    "Turkey did not refuse to support the sanctions.": [
        ("Turkey", 3, "nsubj", "PROPN", "Turkey"), ("did", 3, "aux", "AUX", "do"), ("not", 3, "neg", "PART", "not"),
        ("refuse", 3, "ROOT", "VERB", "refuse"), ("to", 5, "aux", "PART", "to"),
        ("support", 3, "xcomp", "VERB", "support"), ("the", 7, "det", "DET", "the"),
        ("sanctions", 5, "dobj", "NOUN", "sanction"), (".", 3, "punct", "PUNCT", ".")],
}


@pytest.mark.parametrize("sentence", list(UNASSERTED))
def test_a_denied_or_supposed_stance_is_no_relation(sentence):
    doc = parse(UNASSERTED[sentence])
    assert doc.text == sentence
    actor = span(doc, 0, 0, "GPE", 0.9)
    target = next(span(doc, t.i, t.i, "TOPIC", 1.0) for t in doc if t.text == "sanctions")
    assert EXTRACTOR([doc], [[actor, target]]) == [[]]


def test_span_without_a_score_counts_as_one():
    """A span with no score (a pattern match, a gold span) leaves the rule's prior as the score."""
    doc, spans = CASES["supports-verb"].build()
    unscored = [replace(s, score=None) for s in spans.values()]
    (relations,) = EXTRACTOR([doc], [unscored])
    assert [r.score for r in relations] == [RULES["supports-verb"]["confidence"]]


def test_conjunct_targets_each_get_a_relation():
    """"China supports Pakistan and Iran": the target's conjunct is followed, two relations."""
    doc = parse([("China", 1, "nsubj", "PROPN", "China"),
                 ("supports", 1, "ROOT", "VERB", "support"),
                 ("Pakistan", 1, "dobj", "PROPN", "Pakistan"),
                 ("and", 2, "cc", "CCONJ", "and"),
                 ("Iran", 2, "conj", "PROPN", "Iran"),
                 (".", 1, "punct", "PUNCT", ".")])
    china, pakistan, iran = span(doc, 0, 0, "GPE", 0.9), span(doc, 2, 2, "GPE", 0.8), span(doc, 4, 4, "GPE", 0.6)
    (relations,) = EXTRACTOR([doc], [[china, pakistan, iran]])
    assert relations == [Relation(china.key, pakistan.key, "SUPPORTS", 0.64),
                         Relation(china.key, iran.key, "SUPPORTS", 0.48)]


def test_conjunct_actors_each_get_a_relation():
    """"China and Russia oppose the sanctions": the actor's conjunct is followed too."""
    doc = parse([("China", 3, "nsubj", "PROPN", "China"),
                 ("and", 0, "cc", "CCONJ", "and"),
                 ("Russia", 0, "conj", "PROPN", "Russia"),
                 ("oppose", 3, "ROOT", "VERB", "oppose"),
                 ("the", 5, "det", "DET", "the"),
                 ("sanctions", 3, "dobj", "NOUN", "sanction"),
                 (".", 3, "punct", "PUNCT", ".")])
    china, russia, sanctions = span(doc, 0, 0, "GPE", 0.9), span(doc, 2, 2, "GPE", 0.7), span(doc, 5, 5, "TOPIC", 0.8)
    (relations,) = EXTRACTOR([doc], [[china, russia, sanctions]])
    assert relations == [Relation(china.key, sanctions.key, "OPPOSES", 0.64),
                         Relation(russia.key, sanctions.key, "OPPOSES", 0.56)]


# "Xi Jinping met Putin in Moscow. They declared joint opposition to hegemony."
MEETING_THEN_THEY = [
    ("Xi", 1, "compound", "PROPN", "Xi"),
    ("Jinping", 2, "nsubj", "PROPN", "Jinping"),
    ("met", 2, "ROOT", "VERB", "meet"),
    ("Putin", 2, "dobj", "PROPN", "Putin"),
    ("in", 2, "prep", "ADP", "in"),
    ("Moscow", 4, "pobj", "PROPN", "Moscow"),
    (".", 2, "punct", "PUNCT", "."),
    ("They", 8, "nsubj", "PRON", "they"),
    ("declared", 8, "ROOT", "VERB", "declare"),
    ("joint", 10, "amod", "ADJ", "joint"),
    ("opposition", 8, "dobj", "NOUN", "opposition"),
    ("to", 10, "prep", "ADP", "to"),
    ("hegemony", 11, "pobj", "NOUN", "hegemony"),
    (".", 8, "punct", "PUNCT", "."),
]
THEY_ONLY = [(w, h - 7, d, p, l) for w, h, d, p, l in MEETING_THEN_THEY[7:]]


def test_collective_subject_stands_for_both_parties_of_the_earlier_meeting():
    """"They" (in no span) takes the two parties of the last meeting earlier in the paragraph, not
    any other span there (Moscow): one OPPOSES relation for each party."""
    doc = parse(MEETING_THEN_THEY)
    assert [s.text for s in doc.sents] == ["Xi Jinping met Putin in Moscow.",
                                           "They declared joint opposition to hegemony."]
    xi, putin = span(doc, 0, 1, "PERSON", 0.9), span(doc, 3, 3, "PERSON", 0.8)
    moscow, hegemony = span(doc, 5, 5, "GPE", 0.95), span(doc, 12, 12, "TOPIC", 0.7)
    (relations,) = EXTRACTOR([doc], [[xi, putin, moscow, hegemony]])
    assert relations == [
        Relation(xi.key, putin.key, "MEETS_WITH", expected_score("meets-active", xi, putin)),
        Relation(xi.key, hegemony.key, "OPPOSES", expected_score("opposes-noun", xi, hegemony)),
        Relation(putin.key, hegemony.key, "OPPOSES", expected_score("opposes-noun", putin, hegemony)),
    ]


def test_collective_subject_does_not_reach_into_another_paragraph():
    """Each doc is a paragraph: a meeting in one does not give "They" its parties in the next."""
    meeting, they = parse(MEETING_THEN_THEY[:7]), parse(THEY_ONLY)
    xi, putin = span(meeting, 0, 1, "PERSON", 0.9), span(meeting, 3, 3, "PERSON", 0.8)
    hegemony = span(they, 5, 5, "TOPIC", 0.7)
    first, second = EXTRACTOR([meeting, they], [[xi, putin], [hegemony]])
    assert [r.label for r in first] == ["MEETS_WITH"]
    assert second == []


def test_actor_found_inside_its_noun_phrase():
    """"The Chinese leader met the president of Belarus": neither head noun is in a span, so the
    spans inside their noun phrases stand for them (amod Chinese; prep/pobj Belarus)."""
    doc = parse([("The", 2, "det", "DET", "the"),
                 ("Chinese", 2, "amod", "ADJ", "chinese"),
                 ("leader", 3, "nsubj", "NOUN", "leader"),
                 ("met", 3, "ROOT", "VERB", "meet"),
                 ("the", 5, "det", "DET", "the"),
                 ("president", 3, "dobj", "NOUN", "president"),
                 ("of", 5, "prep", "ADP", "of"),
                 ("Belarus", 6, "pobj", "PROPN", "Belarus"),
                 (".", 3, "punct", "PUNCT", ".")])
    chinese, belarus = span(doc, 1, 1, "NORP", 0.9), span(doc, 7, 7, "GPE", 0.8)
    (relations,) = EXTRACTOR([doc], [[chinese, belarus]])
    score = expected_score("meets-active", chinese, belarus)
    assert relations == [Relation(chinese.key, belarus.key, "MEETS_WITH", score)]


# --- near misses: a parse one step away from a rule yields nothing -------------------------------

@dataclass
class NearMiss:
    label: str  # the relation family the sentence nearly gives
    text: str
    tokens: list[tuple[str, int, str, str, str]]
    spans: list[tuple[int, int, str, float]]


NEAR_MISSES: dict[str, NearMiss] = {
    "supports-target-in-no-span": NearMiss(  # "multilateralism" is no span, nor is anything under it
        "SUPPORTS", "China supports multilateralism.",
        CASES["supports-verb"].tokens,
        [(0, 0, "GPE", 0.9)],
    ),
    "supports-actor-label-not-an-actor": NearMiss(  # a LAW span cannot be an actor
        "SUPPORTS", "The treaty supports Ukraine.",
        [("The", 1, "det", "DET", "the"),
         ("treaty", 2, "nsubj", "NOUN", "treaty"),
         ("supports", 2, "ROOT", "VERB", "support"),
         ("Ukraine", 2, "dobj", "PROPN", "Ukraine"),
         (".", 2, "punct", "PUNCT", ".")],
        [(0, 1, "LAW", 0.9), (3, 3, "GPE", 0.9)],
    ),
    "opposes-collective-subject-without-a-meeting": NearMiss(  # "They" with no earlier meeting
        "OPPOSES", "They rejected the plan.",
        [("They", 1, "nsubj", "PRON", "they"),
         ("rejected", 1, "ROOT", "VERB", "reject"),
         ("the", 3, "det", "DET", "the"),
         ("plan", 1, "dobj", "NOUN", "plan"),
         (".", 1, "punct", "PUNCT", ".")],
        [(2, 3, "TOPIC", 0.9)],
    ),
    "meets-talks-on-not-with": NearMiss(  # talks *on* Syria are no meeting with Syria
        "MEETS_WITH", "Putin held talks on Syria.",
        [("Putin", 1, "nsubj", "PROPN", "Putin"),
         ("held", 1, "ROOT", "VERB", "hold"),
         ("talks", 1, "dobj", "NOUN", "talk"),
         ("on", 2, "prep", "ADP", "on"),
         ("Syria", 3, "pobj", "PROPN", "Syria"),
         (".", 1, "punct", "PUNCT", ".")],
        [(0, 0, "PERSON", 0.9), (4, 4, "GPE", 0.9)],
    ),
    "cooperates-partner-in-no-span": NearMiss(
        "COOPERATES_WITH", "India works with partners.",
        [("India", 1, "nsubj", "PROPN", "India"),
         ("works", 1, "ROOT", "VERB", "work"),
         ("with", 1, "prep", "ADP", "with"),
         ("partners", 2, "pobj", "NOUN", "partner"),
         (".", 1, "punct", "PUNCT", ".")],
        [(0, 0, "GPE", 0.9)],
    ),
}


def test_every_relation_family_has_a_near_miss():
    assert {case.label for case in NEAR_MISSES.values()} == set(RELATIONS.labels)


@pytest.mark.parametrize("name", list(NEAR_MISSES))
def test_near_miss_yields_nothing(name):
    """The rule's pattern (nearly) matches, but a matched token stands for no span it may use."""
    case = NEAR_MISSES[name]
    doc = parse(case.tokens)
    assert doc.text == case.text
    (relations,) = EXTRACTOR([doc], [[span(doc, *spec) for spec in case.spans]])
    assert relations == []


# --- the union of two relation models -----------------------------------------------------------

A, B, C = (0, 5), (10, 15), (20, 25)


def fixed_model(version: str, per_doc: list[list[Relation]]):
    """A relation model that ignores its input and returns `per_doc`, one list per doc."""
    def model(docs, spans):
        assert len(docs) == len(per_doc)
        return [list(relations) for relations in per_doc]
    model.version = version
    return model


def test_union_keeps_each_relation_once_with_the_higher_score():
    """Keyed by (head, tail, label), directionless for symmetric labels; the higher score wins
    (a missing score counts as 0, a tie keeps the first model's); the winner keeps its own
    direction; order is the first model's, then what only the second found, doc by doc."""
    assert {"COOPERATES_WITH", "MEETS_WITH"} <= set(RELATIONS.symmetric)
    first = fixed_model("trained", [
        [Relation(A, B, "SUPPORTS", 0.6),
         Relation(B, A, "MEETS_WITH", 0.5),        # the second model has it the other way round, higher
         Relation(A, C, "OPPOSES", 0.9),
         Relation(C, B, "COOPERATES_WITH", 0.5),   # the second model has it the other way round, tied
         Relation(B, C, "SUPPORTS", None)],
        [Relation(A, B, "MEETS_WITH", 0.4)],
    ])
    second = fixed_model("rules.abcd1234", [
        [Relation(A, B, "SUPPORTS", 0.8),
         Relation(A, B, "MEETS_WITH", 0.7),
         Relation(C, A, "OPPOSES", 0.4),           # not symmetric: a relation of its own
         Relation(B, C, "COOPERATES_WITH", 0.5),
         Relation(B, C, "SUPPORTS", 0.3),
         Relation(A, C, "OPPOSES", 0.2)],
        [],
    ])
    union = UnionRelationModel(first, second, RELATIONS.symmetric)
    assert union.version == "union(trained+rules.abcd1234)"
    merged = union([None, None], [[], []])
    assert merged == [
        [Relation(A, B, "SUPPORTS", 0.8),
         Relation(A, B, "MEETS_WITH", 0.7),
         Relation(A, C, "OPPOSES", 0.9),
         Relation(C, B, "COOPERATES_WITH", 0.5),
         Relation(B, C, "SUPPORTS", 0.3),
         Relation(C, A, "OPPOSES", 0.4)],
        [Relation(A, B, "MEETS_WITH", 0.4)],
    ]
    assert union([None, None], [[], []]) == merged


def test_union_without_symmetric_labels_keeps_both_directions():
    """With no symmetric labels given, a relation and its reverse are two relations."""
    first = fixed_model("a", [[Relation(A, B, "MEETS_WITH", 0.5)]])
    second = fixed_model("b", [[Relation(B, A, "MEETS_WITH", 0.7)]])
    assert UnionRelationModel(first, second)([None], [[]]) == [
        [Relation(A, B, "MEETS_WITH", 0.5), Relation(B, A, "MEETS_WITH", 0.7)]]


@pytest.mark.parametrize("subject", ["He", "The president"])
def test_a_referring_subject_stands_for_the_last_person_before_it(subject):
    """"Macron arrived in Beijing. He met Xi.": "he" and "the president" are no span, so the last
    PERSON mentioned before them in the paragraph is the actor (Beijing, a GPE, is not)."""
    rows = [("Macron", 1, "nsubj", "PROPN", "Macron"), ("arrived", 1, "ROOT", "VERB", "arrive"),
            ("in", 1, "prep", "ADP", "in"), ("Beijing", 2, "pobj", "PROPN", "Beijing"), (".", 1, "punct", "PUNCT", ".")]
    if subject == "He":
        rows += [("He", 6, "nsubj", "PRON", "he"), ("met", 6, "ROOT", "VERB", "meet"),
                 ("Xi", 6, "dobj", "PROPN", "Xi"), (".", 6, "punct", "PUNCT", ".")]
    else:
        rows += [("The", 6, "det", "DET", "the"), ("president", 7, "nsubj", "NOUN", "president"),
                 ("met", 7, "ROOT", "VERB", "meet"), ("Xi", 7, "dobj", "PROPN", "Xi"), (".", 7, "punct", "PUNCT", ".")]
    doc = parse(rows)
    macron, beijing, xi = span(doc, 0, 0, "PERSON", 0.9), span(doc, 3, 3, "GPE", 0.9), span(doc, len(doc) - 2,
                                                                                            len(doc) - 2, "PERSON", 0.8)
    (relations,) = EXTRACTOR([doc], [[macron, beijing, xi]])
    assert relations == [Relation(macron.key, xi.key, "MEETS_WITH", expected_score("meets-active", macron, xi))]


def test_a_referring_subject_with_nobody_before_it_stands_for_no_one():
    doc = parse([("He", 1, "nsubj", "PRON", "he"), ("met", 1, "ROOT", "VERB", "meet"),
                 ("Xi", 1, "dobj", "PROPN", "Xi"), (".", 1, "punct", "PUNCT", ".")])
    assert EXTRACTOR([doc], [[span(doc, 2, 2, "PERSON", 0.8)]]) == [[]]
