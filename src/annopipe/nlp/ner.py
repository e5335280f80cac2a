"""Named entities with a confidence per span: spaCy's NER, mapped to project labels, plus TOPIC patterns.

spaCy's greedy NER gives no scores, and its beam decoder does not produce sensible entities with
greedy-trained weights (checked on en_core_web_sm 3.8: it returns spans that run across whole
clauses). So annopipe replays the greedy decoder itself: at every token it takes the model's
best valid BILUO move, exactly as spaCy does (the entities are identical, a test checks it), and
records that move's softmax probability among the valid moves. A span's score is the product of
the probabilities of the moves that built it (B, I…, L or U): the probability the model gives to
this span's labelling on its own greedy path. Spans from the TOPIC patterns score 1.0: a pattern
match is certain by construction; how good the patterns are shows up in evaluation, not in scores.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import spacy
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc
from spacy.tokens import Span as SpacySpan
from spacy.util import filter_spans

from annopipe.config import Config, NerConfig
from annopipe.documents import content_hash
from annopipe.errors import AnnopipeError
from annopipe.offsets import grapheme_boundaries
from annopipe.records import Span

if TYPE_CHECKING:
    from annopipe.registry import ModelVersion

_DROPPED_PREFIXES = {"the", "a", "an"}
_DROPPED_SUFFIXES = {"'s", "’s", "'", "’"}
_AMOUNT_LABELS = {"MONEY", "PERCENT"}


def greedy_entities(ner, docs: list[Doc]) -> list[list[tuple[int, int, str, float]]]:
    """(start token, end token, base label, probability) of the entities spaCy's greedy NER finds."""
    moves = ner.moves
    names = [moves.get_class_name(i) for i in range(moves.n_moves)]
    by_action: dict[str, dict[str, int]] = {}
    for i, name in enumerate(names):
        action, _, label = name.partition("-")
        if label or action == "O":
            by_action.setdefault(action, {})[label] = i
    begin = np.array(sorted(by_action["B"].values()))
    unit = np.array(sorted(by_action["U"].values()))
    outside = by_action["O"][""]

    step_model = ner.model.predict(docs)
    states = moves.init_batch(docs)
    found: list[list[tuple[int, int, str, float]]] = [[] for _ in docs]
    open_entity: list[tuple[str, int, float] | None] = [None] * len(docs)
    active = [i for i, state in enumerate(states) if not state.is_final()]
    mask = np.zeros(len(names), dtype=bool)
    while active:
        scores = step_model.predict([states[i] for i in active])
        for row, i in enumerate(active):
            state = states[i]
            token, last = state.B(0), state.buffer_length() == 1
            mask[:] = False
            if open_entity[i] is not None:
                label = open_entity[i][0]
                mask[by_action["L"][label]] = True
                if not last:
                    mask[by_action["I"][label]] = True
            else:
                mask[outside] = True
                mask[unit] = True
                if not last:
                    mask[begin] = True
            masked = np.where(mask, scores[row], -np.inf)
            best = int(masked.argmax())
            if not moves.is_valid(state, names[best]):  # rare: whitespace tokens, sentence ends
                full = np.array([moves.is_valid(state, name) for name in names])
                masked = np.where(full, scores[row], -np.inf)
                best = int(masked.argmax())
            log_p = -math.log(float(np.exp(masked - masked[best]).sum()))
            action, _, label = names[best].partition("-")
            if action == "B":
                open_entity[i] = (label, token, log_p)
            elif action == "I":
                label, start, total = open_entity[i]  # type: ignore[misc]
                open_entity[i] = (label, start, total + log_p)
            elif action == "L":
                label, start, total = open_entity[i]  # type: ignore[misc]
                found[i].append((start, token + 1, label, math.exp(total + log_p)))
                open_entity[i] = None
            elif action == "U":
                found[i].append((token, token + 1, label, math.exp(log_p)))
            moves.apply_transition(state, names[best])
        active = [i for i in active if not states[i].is_final()]
    return found


def _trim(span: SpacySpan) -> SpacySpan:
    """Drop a leading article, hedges before amounts ("around $5 billion") and a trailing
    possessive, as the annotation guideline says."""
    start, end = span.start, span.end
    doc = span.doc
    if end - start > 1 and doc[start].lower_ in _DROPPED_PREFIXES:
        start += 1
    if span.label_ in _AMOUNT_LABELS:
        while end - start > 1 and not (doc[start].like_num or doc[start].is_currency):
            start += 1
    if end - start > 1 and doc[end - 1].lower_ in _DROPPED_SUFFIXES:
        end -= 1
    return SpacySpan(doc, start, end, label=span.label)


def _whole_characters(span: SpacySpan, boundaries: set[int]) -> SpacySpan:
    """The span widened by whole tokens until it cuts no grapheme cluster.

    spaCy's tokenizer can split a flag into its two regional indicators or an emoji from its
    skin tone; an entity on one half would show as half a character to an annotator.
    """
    doc, start, end = span.doc, span.start, span.end
    while doc[start].idx not in boundaries:
        start -= 1
    while doc[end - 1].idx + len(doc[end - 1]) not in boundaries:
        end += 1
    return span if (start, end) == (span.start, span.end) else SpacySpan(doc, start, end, label=span.label)


class NerTagger:
    """Entities of parsed docs as project spans: the base model's labels mapped, TOPICs added."""

    def __init__(self, config: NerConfig, nlp: Language):
        self.config = config
        self.ner = nlp.get_pipe("ner")
        # EntityRuler pattern format: token patterns (lists) or phrases (strings, matched lower-cased).
        self.matcher = Matcher(nlp.vocab)
        self.phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        for pattern in config.patterns:
            if isinstance(pattern["pattern"], str):
                self.phrases.add(pattern["label"], [nlp.make_doc(pattern["pattern"])])
            else:
                self.matcher.add(pattern["label"], [pattern["pattern"]])

    def _pattern_spans(self, doc: Doc, taken: list[SpacySpan]) -> list[SpacySpan]:
        """Longest non-overlapping pattern matches that do not touch a model entity."""
        used = {i for span in taken for i in range(span.start, span.end)}
        matches = [*self.matcher(doc, as_spans=True), *self.phrases(doc, as_spans=True)]
        return filter_spans([m for m in matches if not used.intersection(range(m.start, m.end))])

    def __call__(self, docs: list[Doc]) -> list[list[Span]]:
        results = []
        for doc, entities in zip(docs, greedy_entities(self.ner, docs)):
            scores = {}
            ents = []
            for start, end, base_label, prob in entities:
                label = self.config.label_map.get(base_label)
                if label is None:
                    continue
                span = _trim(SpacySpan(doc, start, end, label=label))
                scores[(span.start, span.end)] = prob
                ents.append(span)
            boundaries = grapheme_boundaries(doc.text)
            whole = {}
            for span in [*ents, *self._pattern_spans(doc, ents)]:
                widened = _whole_characters(span, boundaries)
                whole[(widened.start, widened.end)] = widened
                scores.setdefault((widened.start, widened.end), scores.get((span.start, span.end), 1.0))
            doc.ents = sorted(filter_spans(list(whole.values())))
            results.append(
                [
                    Span(e.start_char, e.end_char, e.label_, e.text, round(scores.get((e.start, e.end), 1.0), 4))
                    for e in doc.ents
                ]
            )
        return results


def ner_version(config: NerConfig, model_version: str) -> str:
    settings = json.dumps([config.label_map, config.patterns], sort_keys=True)
    return f"{config.model}@{model_version}+map.{content_hash(settings)[:8]}"


def package_version(name: str) -> str:
    """The installed version of a spaCy pipeline package; "local" for a pipeline in a folder."""
    try:
        return importlib.metadata.version(name.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "local"


def zero_version(config: Config) -> str:
    return ner_version(config.ner, package_version(config.ner.model))


def version_config(config: Config, version: ModelVersion | None) -> NerConfig:
    """The NER settings of a registered version: the config's, with the label map it was trained with."""
    return replace(config.ner, label_map=version.meta["label_map"]) if version else config.ner


def load(config: Config, version: ModelVersion | None, nlp: Language) -> NerTagger:
    """The NER of a registered version (its spaCy pipeline is `nlp`), or model zero's."""
    return NerTagger(version_config(config, version), nlp)


def load_spacy(name: str) -> Language:
    try:
        return spacy.load(name)
    except OSError:
        raise AnnopipeError(
            f"spaCy pipeline '{name}' is not installed; install its package or point ner.model at a folder"
        ) from None


NER_FOLDER = "ner"
"""Where a trained version keeps its NER component: the rest of the pipeline is the base package's."""


def ner_pipeline(config: Config, version: ModelVersion | None) -> Language:
    """The spaCy pipeline a NER version runs in: the base package with the version's NER component.

    A trained version saves only its NER component (about 6 MB, small enough to commit and ship)
    and names the base package and version it was trained in; tagger, parser and lemmatizer stay
    the base's. Versions saved as a whole pipeline (`config.cfg` in the folder) load as they are.
    """
    if version is None:
        return load_spacy(config.ner.model)
    if (version.model_dir / "config.cfg").exists():
        nlp = load_spacy(str(version.model_dir))
    else:
        base, trained_on = version.meta["base"], version.meta.get("base_version")
        installed = package_version(base)
        if trained_on and installed != trained_on:
            raise AnnopipeError(f"NER version {version.version} was trained in {base} {trained_on} but {installed} "
                                "is installed; install that version or train again")
        nlp = load_spacy(base)
        nlp.get_pipe("ner").from_disk(version.model_dir / NER_FOLDER, exclude=["vocab"])
    set_unseen_actions(nlp.get_pipe("ner"), version.meta.get(UNSEEN_ACTIONS, []))
    return nlp


UNSEEN_ACTIONS = "unseen_actions"
"""Meta key: the NER actions training never saw. spaCy masks unseen actions out when predicting but
does not save which they are: a loaded component that gained labels in training (TOPIC) marks all of
their actions unseen, and the model never predicts them. A version without the key saw them all (every
label it adds comes from its training spans)."""


def unseen_actions(ner) -> list[str]:
    return sorted(ner.moves.get_class_name(i) for i in ner.model.attrs.get("unseen_classes", ()))


def set_unseen_actions(ner, names: list[str]) -> None:
    unseen = set(names)
    ner.model.attrs["unseen_classes"] = {i for i in range(ner.moves.n_moves) if ner.moves.get_class_name(i) in unseen}
