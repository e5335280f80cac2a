"""Stance relations, model zero: dependency rules from `configs/relation_rules.yaml`.

Any relation model takes parsed docs and their spans and returns relations between those spans
(`RelationModel`), so a trained classifier can replace the rules without touching the pipeline.
The rules see one sentence at a time through spaCy's DependencyMatcher; they step beyond it through
referring subjects, which `annopipe.nlp.references` resolves: in "They declared joint opposition
to hegemony" *they* stands for the two parties of the last meeting or cooperation found earlier in
the same paragraph, *he* for the last person named.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, reduce
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from spacy.matcher import DependencyMatcher
from spacy.tokens import Doc, Token
from spacy.vocab import Vocab

from annopipe.config import Config, RelationConfig
from annopipe.documents import content_hash
from annopipe.errors import AnnopipeError
from annopipe.nlp.references import Reference, ReferenceResolver, token_spans
from annopipe.records import Relation, Span

if TYPE_CHECKING:
    from spacy.language import Language

    from annopipe.registry import ModelVersion

# Dependencies along which a noun phrase names its actor: "the Chinese leader", "Russia's
# minister", "the president of Belarus", "Chairman of PRC Xi Jinping".
_ACTOR_PATH_DEPS = {"compound", "amod", "poss", "prep", "pobj", "appos", "nmod"}


class RelationModel(Protocol):
    version: str

    def __call__(self, docs: list[Doc], spans: list[list[Span]]) -> list[list[Relation]]: ...


class RuleRelationExtractor:
    def __init__(self, config: RelationConfig, vocab: Vocab):
        self.config = config
        self.matcher = DependencyMatcher(vocab)
        self.rules = {}
        for rule in config.rules:
            self.matcher.add(rule["name"], [rule["pattern"]])
            roles = [node["RIGHT_ID"] for node in rule["pattern"]]
            self.rules[vocab.strings[rule["name"]]] = (rule, roles.index(rule["actor"]), roles.index(rule["target"]))
        self.references = ReferenceResolver(config)
        self.version = self.version_of(config)

    @staticmethod
    def version_of(config: RelationConfig) -> str:
        settings = [config.rules, config.collective_subjects, config.unasserted_modals, config.references]
        return "rules." + content_hash(json.dumps(settings, sort_keys=True))[:8]

    def __call__(self, docs: list[Doc], spans: list[list[Span]]) -> list[list[Relation]]:
        return [self._extract(doc, doc_spans) for doc, doc_spans in zip(docs, spans)]

    def _extract(self, doc: Doc, spans: list[Span]) -> list[Relation]:
        span_of_token = token_spans(doc, spans)
        symmetric = set(self.config.symmetric)
        found: dict[tuple, Relation] = {}
        participants: list[Span] = []
        for match_id, token_ids in sorted(self.matcher(doc), key=lambda m: min(m[1])):
            rule, actor_at, target_at = self.rules[match_id]
            if not self._asserted(doc[token_ids[0]]):
                continue
            actor_token, target_token = doc[token_ids[actor_at]], doc[token_ids[target_at]]
            actors = self._actors(actor_token, span_of_token, participants)
            targets = self._targets(target_token, span_of_token)
            for actor in actors:
                for target in targets:
                    if actor.key == target.key:
                        continue
                    score = round(rule.get("confidence", 0.5) * min(actor.score or 1.0, target.score or 1.0), 4)
                    head, tail = actor.key, target.key
                    if rule["label"] in symmetric:
                        head, tail = sorted((head, tail))
                        participants = [actor, target]
                    key = (head, tail, rule["label"])
                    if key not in found or found[key].score < score:  # type: ignore[operator]
                        found[key] = Relation(head, tail, rule["label"], score)
        return list(found.values())

    def _asserted(self, trigger: Token) -> bool:
        """False when the text denies or only supposes the stance at `trigger` (see relation_rules.yaml)."""
        checked = [trigger]
        if trigger.pos_ in ("NOUN", "PROPN") or trigger.dep_ == "conj":  # "expressed no support", "X and did Y"
            checked.append(trigger.head)
        return not any(_denied(token, self.config.unasserted_modals) for token in checked)

    def _actors(self, token: Token, span_of_token: dict[int, Span], participants: list[Span]) -> list[Span]:
        """The spans the actor token stands for; a subject whose noun phrase names no actor may refer
        to one ("he", "the president") or to the parties of the last meeting or cooperation ("they")."""
        found = self._resolve(token, span_of_token, self.config.actor_labels)
        if found or token.i in span_of_token:
            return found
        return self.references.resolve(token, span_of_token, participants)

    def _targets(self, token: Token, span_of_token: dict[int, Span]) -> list[Span]:
        return self._resolve(token, span_of_token, None)

    @staticmethod
    def _resolve(token: Token, span_of_token: dict[int, Span], labels: list[str] | None) -> list[Span]:
        """The spans a matched token stands for: its own (and its conjuncts'), else the first span
        inside its noun phrase ("the Chinese leader", "India's role", "the president of X")."""
        allowed = (lambda span: span.label in labels) if labels is not None else (lambda span: True)
        found: list[Span] = []
        for candidate in _with_conjuncts(token):
            span = span_of_token.get(candidate.i)
            if span is not None and allowed(span) and span not in found:
                found.append(span)
        if found or token.i in span_of_token:
            return found
        for child in _phrase_tokens(token):
            span = span_of_token.get(child.i)
            if span is not None and allowed(span):
                return [span]
        return []


def _denied(token: Token, modals: Iterable[str]) -> bool:
    """True when `token` is negated ("does not", "never", "no support") or only supposed (a modal)."""
    return any(child.dep_ == "neg" or (child.dep_ == "det" and child.lower_ == "no")
               or (child.dep_ == "aux" and child.lower_ in modals) for child in token.children)


def asserted_between(doc: Doc, head: Span, tail: Span, config: RelationConfig) -> bool:
    """False when what links two spans in the parse is denied, only supposed or refused.

    The link is the dependency path from the tail up to the first token that also governs the
    head (the verb or noun both hang from). A negation or modal on it ("does not support", "could
    oppose", "no support for"), or a refusal verb ("refused to oppose"), means the text asserts no
    stance between the two; the rules then decide alone, and a refusal to support is theirs to
    draw. A trained classifier reads the words but does not reliably learn these cues from a few
    hundred relations (tests/test_polarity.py holds the minimal pairs), so its relations pass here.
    """
    first = doc.char_span(head.start, head.end, alignment_mode="expand")
    second = doc.char_span(tail.start, tail.end, alignment_mode="expand")
    if first is None or second is None:
        return True
    governing = {first.root, *first.root.ancestors}
    for token in (second.root, *second.root.ancestors):
        if token.lemma_.lower() in config.refusal_verbs or _denied(token, config.unasserted_modals):
            return False
        if token in governing:
            return True
    return True


def _with_conjuncts(token: Token) -> list[Token]:
    return [token, *token.conjuncts]


def _phrase_tokens(token: Token) -> Iterable[Token]:
    """Tokens of the noun phrase under `token`, breadth-first, along naming dependencies only."""
    queue = list(token.children)
    while queue:
        child = queue.pop(0)
        if child.dep_ in _ACTOR_PATH_DEPS:
            yield child
            queue.extend(child.children)


# --- trained relation classifier ---------------------------------------------------------------
#
# A trained model classifies candidate pairs of spans. The candidate policy and the way a pair is
# shown to the encoder live here, next to the model that uses them, so training
# (`annopipe.training.relations`) and prediction cannot drift apart; the saved model's
# annopipe.json records the policy it was trained with.

NONE_LABEL = "NONE"

# Typed entity markers made of punctuation the encoder already knows ("@ * person * Modi @ met
# # ^ gpe ^ Tokyo #", Zhou & Chen 2022, "An Improved Baseline for Sentence-level Relation
# Extraction"): new special tokens such as [E1] would start as random vectors and must be learnt
# from a few hundred positives, while punctuation markers reuse pre-trained embeddings; the entity
# type rides along in words. Either marker order is possible, so the model sees which end is the
# actor (@) and which the target (#), whatever comes first in the text.
HEAD_MARKER = "@ * {type} * {text} @"
TAIL_MARKER = "# ^ {type} ^ {text} #"
MAX_CONTEXT_CHARS = 600  # about 128 word pieces with the markers
# Paragraph encoding marks every span alike: the encoder reads the paragraph once, with each span's
# type and extent, and the classifier takes a pair's roles from the order of its two marker states.
SPAN_MARKER = "@ * {type} * {text} @"
MAX_PARAGRAPH_TOKENS = 512  # MiniLM's positions; a span past them is read at [CLS]


@dataclass(frozen=True)
class PairCandidate:
    """An ordered (actor, target) pair of spans and the stretch of text [start, end) that shows it."""

    head: Span
    tail: Span
    start: int
    end: int

    @property
    def forward(self) -> bool:
        """True when the actor is mentioned first: the one direction symmetric labels are drawn in."""
        return (self.head.start, self.head.end) < (self.tail.start, self.tail.end)


def doc_sentences(doc: Doc) -> list[tuple[int, int]]:
    """Character bounds of a doc's sentences; the whole text when it has no sentence boundaries."""
    if doc.has_annotation("SENT_START") or doc.has_annotation("DEP"):
        return [(s.start_char, s.end_char) for s in doc.sents]
    return [(0, len(doc.text))]


class Sentencizer:
    """Sentence bounds from text alone (a blank English spaCy pipeline with the rule sentencizer)."""

    def __init__(self) -> None:
        import spacy

        self.nlp = spacy.blank("en")
        self.nlp.add_pipe("sentencizer")

    def __call__(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        return [doc_sentences(doc) for doc in self.nlp.pipe(texts)]


@cache
def _sentencizer() -> Sentencizer:
    return Sentencizer()


def _sentence_finder(text: str, sentences: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], Callable[[int], int]]:
    """The sentences in order (the whole text when none), and the index of the one a character is in."""
    import bisect

    ordered = sorted(sentences) or [(0, len(text))]
    starts = [start for start, _ in ordered]
    return ordered, lambda at: max(0, bisect.bisect_right(starts, at) - 1)


def relation_candidates(
    text: str,
    spans: list[Span],
    sentences: list[tuple[int, int]],
    actor_labels: Iterable[str] | None,
    window: int = 0,
    max_chars: int = MAX_CONTEXT_CHARS,
) -> list[PairCandidate]:
    """Every ordered (actor, target) pair of distinct spans at most `window` sentences apart.

    An actor is a span whose label is in `actor_labels` (any span when None). A span belongs to
    the sentence its first character is in. The context is the sentence (or the sentences from
    the first to the last of the pair), cut down around the pair when longer than `max_chars`.
    """
    allowed = None if actor_labels is None else set(actor_labels)
    sentences, sentence = _sentence_finder(text, sentences)
    ordered = sorted(spans, key=lambda s: (s.start, s.end))
    where = [sentence(s.start) for s in ordered]
    found = []
    for i, head in enumerate(ordered):
        if allowed is not None and head.label not in allowed:
            continue
        for j, tail in enumerate(ordered):
            if i == j or head.key == tail.key or abs(where[i] - where[j]) > window:
                continue
            first, last = min(where[i], where[j]), max(where[i], where[j])
            start, end = _clip(text, sentences[first][0], sentences[last][1], head, tail, max_chars)
            found.append(PairCandidate(head, tail, start, end))
    return found


def reference_candidates(
    text: str,
    spans: list[Span],
    sentences: list[tuple[int, int]],
    references: Iterable[Reference],
    actor_labels: Iterable[str] | None,
    taken: Iterable[tuple] = (),
    max_chars: int = MAX_CONTEXT_CHARS,
) -> list[PairCandidate]:
    """The pairs a reference adds across sentences: what it stands for with each span of its own
    sentence, both ways where allowed ("Modi arrived. He was received by Ishiba": Modi and Ishiba).

    Pairs in `taken` (keys of head and tail), already candidates, are not repeated.
    """
    allowed = None if actor_labels is None else set(actor_labels)
    sentences, sentence = _sentence_finder(text, sentences)
    seen = set(taken)
    found = []
    for reference in references:
        here = sentence(reference.start)
        named = {a.key for a in reference.antecedents}
        others = [span for span in spans if sentence(span.start) == here and span.key not in named]
        for antecedent in reference.antecedents:
            for other in others:
                for head, tail in ((antecedent, other), (other, antecedent)):
                    if (allowed is not None and head.label not in allowed) or (head.key, tail.key) in seen:
                        continue
                    seen.add((head.key, tail.key))
                    first, last = sorted((sentence(antecedent.start), here))
                    start, end = _clip(text, sentences[first][0], sentences[last][1], head, tail, max_chars)
                    found.append(PairCandidate(head, tail, start, end))
    return found


def related_pair_candidates(
    text: str, spans: list[Span], relations: list[Relation], max_chars: int = MAX_CONTEXT_CHARS
) -> list[PairCandidate]:
    """The ordered pairs of spans that hold a relation in `relations`, once each, in the whole text.

    This is CrossRE's relation-classification setting: the entities, and which pairs of them are
    related, are given; only the label is asked. It scores a classifier on public data as the
    data set's own baseline is scored; it cannot tag new text, which has no relations yet.
    """
    by_key = {span.key: span for span in spans}
    seen: set[tuple] = set()
    found = []
    for rel in relations:
        if (rel.head, rel.tail) in seen:
            continue
        seen.add((rel.head, rel.tail))
        head, tail = by_key[rel.head], by_key[rel.tail]
        start, end = _clip(text, 0, len(text), head, tail, max_chars)
        found.append(PairCandidate(head, tail, start, end))
    return found


def _clip(text: str, start: int, end: int, a: Span, b: Span, max_chars: int) -> tuple[int, int]:
    """[start, end) cut to about max_chars around both spans, at word boundaries."""
    lo, hi = min(a.start, b.start), max(a.end, b.end)
    start, end = min(start, lo), max(end, hi)
    if end - start <= max_chars:
        return start, end
    spare = max(0, max_chars - (hi - lo))
    right = min(end - hi, spare - min(lo - start, spare // 2))
    left = min(lo - start, spare - right)
    new_start, new_end = lo - left, hi + right
    if new_start > start:
        cut = text.find(" ", new_start, lo)
        new_start = cut + 1 if cut >= 0 else new_start
    if new_end < end:
        cut = text.rfind(" ", hi, new_end)
        new_end = cut if cut >= 0 else new_end
    return new_start, new_end


@dataclass(frozen=True)
class SentencePairs:
    """Every ordered (actor, target) pair at most `window` sentences apart: what tagging new text needs.

    A model trained on them has a NONE class; symmetric labels count only from the first-mentioned
    span, so each symmetric relation is found once.
    """

    window: int = 0
    split_sentences: bool = True
    encoding: str = "pair"
    references: bool = False  # also pair what a reference stands for with the spans of its sentence
    name = "all"
    tags_new_text = True
    none_class = True

    def settings(self) -> dict:
        return {"pairs": self.name, "window": self.window, "split_sentences": self.split_sentences,
                "encoding": self.encoding, "references": self.references}

    def examples(self, text: str, spans: list[Span], pairs: list[PairCandidate],
                 head_marker: str = HEAD_MARKER, tail_marker: str = TAIL_MARKER) -> list[tuple[str, tuple[int, int]]]:
        """What the encoder reads for each pair, and where the pair's two markers begin in it: the
        pair's own context with its two spans marked ("pair"), or the paragraph with every span
        marked, one text for all its pairs ("paragraph")."""
        if self.encoding == "pair":
            return pair_examples(text, pairs, head_marker, tail_marker)
        marked, starts = marked_paragraph(text, spans)
        return [(marked, (starts[pair.head.key], starts[pair.tail.key])) for pair in pairs]

    def undirected(self, symmetric: Iterable[str]) -> set[str]:
        return set(symmetric)

    def sentences(self, texts: list[str], docs: list[Doc] | None = None) -> list[list[tuple[int, int]]]:
        """The parser's sentences when `docs` are given, else the rule sentencizer's (no parser needed)."""
        if not self.split_sentences:
            return [[(0, len(text))] for text in texts]
        return [doc_sentences(doc) for doc in docs] if docs is not None else _sentencizer()(texts)

    def pairs(self, text: str, spans: list[Span], relations: list[Relation], sentences: list[tuple[int, int]],
              actor_labels: Iterable[str] | None, references: Iterable[Reference] = ()) -> list[PairCandidate]:
        found = relation_candidates(text, spans, sentences, actor_labels, self.window)
        if self.references:
            taken = {(pair.head.key, pair.tail.key) for pair in found}
            found += reference_candidates(text, spans, sentences, references, actor_labels, taken)
        return found

    def labels(self, row, labels: list[str], symmetric: set[str], pair: PairCandidate,
               threshold: float) -> list[tuple[str, float]]:
        decided = decide(row, labels, symmetric, pair.forward, threshold)
        return [decided] if decided is not None else []


@dataclass(frozen=True)
class RelatedPairs:
    """The pairs that hold a gold relation, given: CrossRE's relation-classification setting.

    It scores a classifier on public data as the data set's own baseline is scored; it cannot tag
    new text, which has no relations yet. Given pairs come with their direction, so no label is
    symmetric; there is no NONE class, and a pair takes its best label plus every other whose
    probability reaches the threshold.
    """

    name = "related"
    tags_new_text = False
    none_class = False
    references = False

    def settings(self) -> dict:
        return {"pairs": self.name, "window": 0, "split_sentences": False, "encoding": "pair"}

    def examples(self, text: str, spans: list[Span], pairs: list[PairCandidate],
                 head_marker: str = HEAD_MARKER, tail_marker: str = TAIL_MARKER) -> list[tuple[str, tuple[int, int]]]:
        return pair_examples(text, pairs, head_marker, tail_marker)

    def undirected(self, symmetric: Iterable[str]) -> set[str]:
        return set()

    def sentences(self, texts: list[str], docs: list[Doc] | None = None) -> list[list[tuple[int, int]]]:
        return [[(0, len(text))] for text in texts]

    def pairs(self, text: str, spans: list[Span], relations: list[Relation], sentences: list[tuple[int, int]],
              actor_labels: Iterable[str] | None, references: Iterable[Reference] = ()) -> list[PairCandidate]:
        return related_pair_candidates(text, spans, relations)

    def labels(self, row, labels: list[str], symmetric: set[str], pair: PairCandidate,
               threshold: float) -> list[tuple[str, float]]:
        return labels_of_related_pair(row, labels, threshold)


CandidatePolicy = SentencePairs | RelatedPairs


def candidate_policy(settings: dict) -> CandidatePolicy:
    """The policy a model card's `candidates` settings name (`pairs`: all or related)."""
    kind = settings.get("pairs", "all")
    if kind == "related":
        return RelatedPairs()
    encoding = settings.get("encoding", "pair")
    if encoding not in ("pair", "paragraph"):
        raise AnnopipeError(f"unknown candidate encoding {encoding!r}: use pair or paragraph")
    if kind == "all":
        return SentencePairs(int(settings.get("window", 0)), bool(settings.get("split_sentences", True)), encoding,
                             bool(settings.get("references", False)))
    raise AnnopipeError(f"unknown candidate pairs {kind!r}: use all or related")


def marked_example(
    text: str, pair: PairCandidate, head_marker: str = HEAD_MARKER, tail_marker: str = TAIL_MARKER
) -> tuple[str, tuple[int, int]]:
    """The pair's context with both spans wrapped in their markers, and where the head's and the
    tail's markers begin in it (the model reads the encoder's states there)."""
    def marker(template: str, span: Span) -> str:
        return template.format(type=span.label.lower().replace("_", " "), text=span.text)

    head_first = (pair.head.start, pair.head.end) <= (pair.tail.start, pair.tail.end)
    first, second = (pair.head, pair.tail) if head_first else (pair.tail, pair.head)
    before = text[pair.start : first.start].lstrip()
    first_marked = marker(head_marker if head_first else tail_marker, first)
    between = text[first.end : second.start]
    second_marked = marker(tail_marker if head_first else head_marker, second)
    after = text[max(second.end, first.end) : pair.end].rstrip()
    first_at = len(before)
    second_at = first_at + len(first_marked) + len(between)
    marked = before + first_marked + between + second_marked + after
    return marked, ((first_at, second_at) if head_first else (second_at, first_at))


def pair_examples(text: str, pairs: list[PairCandidate], head_marker: str = HEAD_MARKER,
                  tail_marker: str = TAIL_MARKER) -> list[tuple[str, tuple[int, int]]]:
    """Each pair's own context with its two spans marked, and where the two markers begin."""
    return [marked_example(text, pair, head_marker, tail_marker) for pair in pairs]


def marked_paragraph(text: str, spans: list[Span], marker: str = SPAN_MARKER) -> tuple[str, dict[tuple, int]]:
    """The text with every span wrapped in `marker`, and where each span's marker begins in it."""
    out, starts, at, length, previous = [], {}, 0, 0, None
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if previous is not None and span.start < at:  # records never overlap; were they to, read the first
            starts[span.key] = starts[previous.key]
            continue
        previous = span
        before = text[at : span.start]
        wrapped = marker.format(type=span.label.lower().replace("_", " "), text=span.text)
        starts[span.key] = length + len(before)
        out += [before, wrapped]
        length += len(before) + len(wrapped)
        at = span.end
    out.append(text[at:])
    return "".join(out), starts


class TrainedRelationModel:
    """Relations from a fine-tuned pair classifier (`annopipe.training.relations`).

    Every candidate pair of every doc goes through the model in length-sorted batches. A pair gets
    the label with the highest calibrated probability when that label is not NONE and its
    probability reaches `threshold`; the probability is the relation's score. Symmetric labels
    are only predicted from the first-mentioned span to the other (as the guidelines draw them),
    so each symmetric relation is found once. `threshold=None` takes the threshold that did best on
    the development set in training (recorded in annopipe.json). A model trained on related pairs
    only (CrossRE's setting) gives each given pair its best label, and further labels whose
    probability reaches the threshold.
    """

    def __init__(
        self,
        model_dir,
        symmetric: Iterable[str] = (),
        actor_labels: Iterable[str] | None = None,
        threshold: float | None = 0.5,
        batch_size: int = 64,
        version: str | None = None,
        polarity: RelationConfig | None = None,
        references: ReferenceResolver | None = None,
    ):
        """`polarity` (the relation config) drops relations `asserted_between` finds unasserted in a
        parsed doc; without it every relation the classifier finds is kept. `references` resolves
        referring words in parsed docs for a model trained with reference pairs."""
        from annopipe.nlp.paragraphs import CalibratedClassifier

        self.classifier = CalibratedClassifier(model_dir, batch_size)
        meta = self.classifier.meta
        self.labels = self.classifier.labels
        self.actor_labels = None if actor_labels is None else list(actor_labels)
        self.threshold = float(meta.get("best_dev_threshold", 0.5)) if threshold is None else threshold
        self.policy = candidate_policy(meta.get("candidates", {}))
        self.symmetric = self.policy.undirected(symmetric)
        markers = meta.get("markers", {})
        self.head_marker = markers.get("head", HEAD_MARKER)
        self.tail_marker = markers.get("tail", TAIL_MARKER)
        self.version = version or self.classifier.version
        self.polarity = polarity
        self.references = references if self.policy.references else None

    def __call__(self, docs: list[Doc], spans: list[list[Span]]) -> list[list[Relation]]:
        texts = [doc.text for doc in docs]
        references = None
        if self.references is not None:
            references = [self.references(doc, doc_spans) for doc, doc_spans in zip(docs, spans)]
        found = self.predict(texts, spans, self.policy.sentences(texts, docs), references)
        if self.polarity is None:
            return found
        kept = []
        for doc, doc_spans, relations in zip(docs, spans, found):
            by_key = {span.key: span for span in doc_spans}
            parsed = doc.has_annotation("DEP")
            kept.append([r for r in relations
                         if not parsed or asserted_between(doc, by_key[r.head], by_key[r.tail], self.polarity)])
        return kept

    def predict(
        self, texts: list[str], spans: list[list[Span]], sentences: list[list[tuple[int, int]]],
        references: list[list[Reference]] | None = None,
    ) -> list[list[Relation]]:
        """Relations for texts with their spans, sentence bounds and (when resolved) references."""
        if not self.policy.tags_new_text:
            raise AnnopipeError("this relation model only labels pairs known to be related (CrossRE's setting) "
                                "and cannot tag new text; train one with `annopipe train relations`")
        pairs = [
            self.policy.pairs(text, text_spans, [], bounds, self.actor_labels, text_references)
            for text, text_spans, bounds, text_references in zip(texts, spans, sentences, references or [()] * len(texts))
        ]
        return self.classify(texts, spans, pairs)

    def classify(self, texts: list[str], spans: list[list[Span]], pairs: list[list[PairCandidate]]) -> list[list[Relation]]:
        """The relations that the model finds among given candidate pairs of each text."""
        flat = [(i, pair) for i, text_pairs in enumerate(pairs) for pair in text_pairs]
        examples = [example for text, text_spans, text_pairs in zip(texts, spans, pairs)
                    for example in self.policy.examples(text, text_spans, text_pairs, self.head_marker, self.tail_marker)]
        probs = self.classifier.probabilities([e[0] for e in examples], [e[1] for e in examples])
        found: list[dict[tuple, Relation]] = [{} for _ in texts]
        for (i, pair), row in zip(flat, probs):
            for label, score in self.policy.labels(row, self.labels, self.symmetric, pair, self.threshold):
                key = (pair.head.key, pair.tail.key, label)
                if key not in found[i] or found[i][key].score < score:  # type: ignore[operator]
                    found[i][key] = Relation(pair.head.key, pair.tail.key, label, score)
        return [list(relations.values()) for relations in found]

    def predict_records(self, records: list) -> list:
        """Copies of `records` (annopipe Records) with their relations predicted from text and spans.

        Sentences come from spaCy's rule sentencizer, so no parser is needed (evaluation on gold
        and public data); the pipeline path (`__call__`) uses the parser's sentences instead, and
        only it resolves references (they need the parse).
        A model trained on related pairs only (CrossRE's setting) labels the pairs related in
        `records` and nothing else.
        """
        import dataclasses

        texts = [r.text for r in records]
        sentences = self.policy.sentences(texts)
        pairs = [self.policy.pairs(r.text, list(r.spans), list(r.relations), bounds, self.actor_labels)
                 for r, bounds in zip(records, sentences)]
        relations = self.classify(texts, [list(r.spans) for r in records], pairs)
        return [
            dataclasses.replace(r, relations=rels, models={**r.models, "relations": self.version})
            for r, rels in zip(records, relations)
        ]


def labels_of_related_pair(row, labels: list[str], also: float) -> list[tuple[str, float]]:
    """(label, probability) for a pair known to be related: its most probable label, and every
    other whose probability reaches `also` (a pair can hold several relations: 16% of CrossRE's
    related pairs in dev do)."""
    ranked = sorted(((float(p), label) for label, p in zip(labels, row)), reverse=True)
    return [(label, round(p, 4)) for i, (p, label) in enumerate(ranked) if i == 0 or p >= also]


def decide(row, labels: list[str], symmetric: set[str], forward: bool, threshold: float) -> tuple[str, float] | None:
    """(label, probability) for one pair's probabilities, or None when it is no relation.

    Symmetric labels do not count on backward pairs (actor mentioned second): their probability
    there is not a prediction, and the pair takes its best remaining label.
    """
    best, best_p = None, -1.0
    for index, label in enumerate(labels):
        p = float(row[index])
        if label in symmetric and not forward:
            continue
        if p > best_p:
            best, best_p = label, p
    if best is None or best == NONE_LABEL or best_p < threshold:
        return None
    return best, round(best_p, 4)


class UnionRelationModel:
    """Relations from two models together, de-duplicated by (head, tail, label) with the higher score.

    Symmetric labels are keyed without direction. The scores of different models need not be
    comparable (the rules' are priors, a trained model's are calibrated probabilities): max is a
    union, not a calibrated combination.
    """

    def __init__(self, first: RelationModel, second: RelationModel, symmetric: Iterable[str] = ()):
        self.first, self.second = first, second
        self.symmetric = set(symmetric)
        self.version = f"union({first.version}+{second.version})"

    def __call__(self, docs: list[Doc], spans: list[list[Span]]) -> list[list[Relation]]:
        merged = []
        for ours, theirs in zip(self.first(docs, spans), self.second(docs, spans)):
            found: dict[tuple, Relation] = {}
            for rel in [*ours, *theirs]:
                head, tail = sorted((rel.head, rel.tail)) if rel.label in self.symmetric else (rel.head, rel.tail)
                key = (head, tail, rel.label)
                if key not in found or (found[key].score or 0.0) < (rel.score or 0.0):
                    found[key] = rel
            merged.append(list(found.values()))
        return merged


# -- composing relation models from named parts ---------------------------------------------------------

RELATION_PARTS: dict[str, Callable[[RelationConfig, Vocab, Path | None], RelationModel]] = {
    "rules": lambda config, vocab, model_dir: RuleRelationExtractor(config, vocab),
    "trained": lambda config, vocab, model_dir: TrainedRelationModel(model_dir, config.symmetric, config.actor_labels,
                                                                     polarity=config,
                                                                     references=ReferenceResolver(config)),
}
"""The relation models a stored spec can name; `{"kind": "union", "parts": [...]}` combines them."""

MODEL_ZERO = {"kind": "rules"}


def build_relation_model(spec: dict, config: RelationConfig, vocab: Vocab, model_dir: Path | None = None) -> RelationModel:
    """The relation model a spec names, the one way tagging and training build it.

    `model_dir` holds the weights of a trained part.
    """
    if spec["kind"] == "union":
        parts = [build_relation_model({"kind": part}, config, vocab, model_dir) for part in spec["parts"]]
        return reduce(lambda first, second: UnionRelationModel(first, second, config.symmetric), parts)
    if spec["kind"] not in RELATION_PARTS:
        raise AnnopipeError(f"unknown relation model {spec['kind']!r}; known: {', '.join([*RELATION_PARTS, 'union'])}")
    return RELATION_PARTS[spec["kind"]](config, vocab, model_dir)


def stored_spec(meta: dict) -> dict:
    """The spec a registered version was saved with (versions before specs saved `with_rules`)."""
    if "relation_model" in meta:
        return meta["relation_model"]
    return {"kind": "union", "parts": ["trained", "rules"]} if meta.get("with_rules") else {"kind": "trained"}


def zero_version(config: Config) -> str:
    return RuleRelationExtractor.version_of(config.relations)


def load(config: Config, version: ModelVersion | None, nlp: Language) -> RelationModel:
    if version is None:
        return build_relation_model(MODEL_ZERO, config.relations, nlp.vocab)
    return build_relation_model(stored_spec(version.meta), config.relations, nlp.vocab, version.model_dir)
