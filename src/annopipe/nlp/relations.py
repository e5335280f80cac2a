"""Stance relations, model zero: dependency rules from `configs/relation_rules.yaml`.

Any relation model takes parsed docs and their spans and returns relations between those spans
(`RelationModel`), so a trained classifier can replace the rules without touching the pipeline.
The rules see one sentence at a time through spaCy's DependencyMatcher; the one step beyond the
sentence is collective subjects: in "They declared joint opposition to hegemony" *they* stands
for the two parties of the last meeting or cooperation found earlier in the same paragraph.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Protocol

from spacy.matcher import DependencyMatcher
from spacy.tokens import Doc, Token
from spacy.vocab import Vocab

from annopipe.config import RelationConfig
from annopipe.documents import content_hash
from annopipe.records import Relation, Span

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
        self.version = self.version_of(config)

    @staticmethod
    def version_of(config: RelationConfig) -> str:
        return "rules." + content_hash(json.dumps([config.rules, config.collective_subjects], sort_keys=True))[:8]

    def __call__(self, docs: list[Doc], spans: list[list[Span]]) -> list[list[Relation]]:
        return [self._extract(doc, doc_spans) for doc, doc_spans in zip(docs, spans)]

    def _extract(self, doc: Doc, spans: list[Span]) -> list[Relation]:
        span_of_token: dict[int, Span] = {}
        for span in spans:
            tokens = doc.char_span(span.start, span.end, alignment_mode="expand")
            for token in tokens or ():
                span_of_token[token.i] = span
        symmetric = set(self.config.symmetric)
        found: dict[tuple, Relation] = {}
        participants: list[Span] = []
        for match_id, token_ids in sorted(self.matcher(doc), key=lambda m: min(m[1])):
            rule, actor_at, target_at = self.rules[match_id]
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

    def _actors(self, token: Token, span_of_token: dict[int, Span], participants: list[Span]) -> list[Span]:
        if token.i not in span_of_token and token.lower_ in self.config.collective_subjects:
            return list(participants)
        return self._resolve(token, span_of_token, self.config.actor_labels)

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
