"""Referring expressions resolved to the named actors of the paragraph, by rules over the parse.

The guideline links a stance to the named actor a subject refers to: in "Modi arrived in Tokyo.
He was received by Ishiba", *he* is Modi; in "Both sides reaffirmed their commitment to X", both
sides are the two parties just named. Analysts' briefs name an actor once and then refer to it,
so a fifth of the gold relations join spans in different sentences, most through such a phrase.

Which words refer is configuration (`references` and `collective_subjects` in
relation_rules.yaml); this module decides what they stand for:

- a singular reference ("he", "his", "the president", "the country") is the last span of its label
  mentioned before it in the paragraph;
- a collective one ("both sides", "the two leaders", "they", "the three governments") is the
  parties of the last meeting or cooperation when the caller knows them (the rules do), else the
  last N distinct actors named before it, N from its numeral ("both" and "two" are 2), or, with no
  numeral, the actors of the last sentence so far that names two or three. Actors that are only
  places ("in Tokyo", "to Beijing") are not parties.

The rules resolve the subjects of the stances they match; the trained classifier gets, for each
reference, candidate pairs between what it stands for and the spans of its sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from spacy.tokens import Doc, Token

from annopipe.config import RelationConfig
from annopipe.records import Span

NUMBERS = {"both": 2, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
REFERRING_DEPS = {"nsubj", "nsubjpass", "poss", "pobj"}  # pobj: "received by him", "talks with them"
MAX_GROUP = 3
LOCATIVE_PREPOSITIONS = {"in", "at", "to", "from", "near", "across", "within", "into", "around"}


@dataclass(frozen=True)
class Reference:
    """A word in no span (characters [start, end)) that stands for `antecedents`."""

    start: int
    end: int
    antecedents: tuple[Span, ...]


def token_spans(doc: Doc, spans: list[Span]) -> dict[int, Span]:
    """The span each token is part of."""
    found: dict[int, Span] = {}
    for span in spans:
        for token in doc.char_span(span.start, span.end, alignment_mode="expand") or ():
            found[token.i] = span
    return found


class ReferenceResolver:
    def __init__(self, config: RelationConfig):
        self.singular = {word: label for label, words in config.references.items() for word in words}
        self.collective = set(config.collective_subjects)
        self.actor_labels = set(config.actor_labels)

    def __call__(self, doc: Doc, spans: list[Span]) -> list[Reference]:
        """Every subject, possessor or prepositional object outside the spans that stands for actors."""
        span_of_token = token_spans(doc, spans)
        found = []
        for token in doc:
            if token.i in span_of_token or token.dep_ not in REFERRING_DEPS:
                continue
            antecedents = self.resolve(token, span_of_token)
            if antecedents:
                found.append(Reference(token.idx, token.idx + len(token), tuple(antecedents)))
        return found

    def resolve(self, token: Token, span_of_token: dict[int, Span], parties: list[Span] | None = None) -> list[Span]:
        """The spans `token` refers to (none when it is no referring word or nothing fits);
        `parties` are those of the last meeting or cooperation, when known."""
        phrase = " ".join([*(t.lower_ for t in token.lefts if t.dep_ == "compound"), token.lower_])
        label = self.singular.get(phrase, self.singular.get(token.lower_))
        if label is None and token.lower_ not in self.collective:
            return []
        if label is None and parties:
            return list(parties)
        before = sorted({id(s): s for i, s in span_of_token.items() if i < token.i}.values(), key=lambda s: s.start)
        if label is not None:
            return [s for s in before if s.label == label][-1:]
        doc = token.doc
        actors = [s for s in before if s.label in self.actor_labels and not _a_place(doc, s)]
        number = _number(token)
        if number is None:
            return _last_group(doc, actors, token)
        distinct: dict[str, Span] = {}
        for span in reversed(actors):
            distinct.setdefault(span.text, span)
            if len(distinct) == number:
                return sorted(distinct.values(), key=lambda s: s.start)
        return []


def _number(token: Token) -> int | None:
    """How many parties a collective phrase names: its own numeral or that of a modifier."""
    for word in (token, *token.children):
        if word.lower_ in NUMBERS and (word is token or word.dep_ in ("nummod", "det", "predet", "quantmod")):
            return NUMBERS[word.lower_]
    return None


def _a_place(doc: Doc, span: Span) -> bool:
    """True for a span that the text only names as a location ("in Tokyo", "flew to Beijing")."""
    tokens = doc.char_span(span.start, span.end, alignment_mode="expand")
    if tokens is None:
        return False
    root = tokens.root
    return root.dep_ == "pobj" and root.head.lower_ in LOCATIVE_PREPOSITIONS


def _last_group(doc: Doc, actors: list[Span], token: Token) -> list[Span]:
    """The distinct actors of the last sentence up to `token` that names at least two of them; none
    when it names more than MAX_GROUP (a list of actors is rarely what "they" continues with)."""
    if not (doc.has_annotation("SENT_START") or doc.has_annotation("DEP")):
        return []
    groups: dict[int, dict[str, Span]] = {}
    for span in actors:
        tokens = doc.char_span(span.start, span.end, alignment_mode="expand")
        if tokens is not None:
            groups.setdefault(tokens.sent.start, {}).setdefault(span.text, span)
    for sentence in sorted(groups, reverse=True):
        if sentence <= token.sent.start and len(groups[sentence]) >= 2:
            group = groups[sentence]
            return sorted(group.values(), key=lambda s: s.start) if len(group) <= MAX_GROUP else []
    return []
