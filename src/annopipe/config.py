"""The project configuration (`configs/annopipe.yaml`), typed and checked on load.

Every label used anywhere (label map, entity-ruler patterns, relation rules, paragraph labels)
is checked against the declared label sets here, so a typo fails at start-up with the file and the
label named instead of silently producing nothing. Secrets never live in this file: anything
secret comes from the environment at the edge that needs it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from annopipe.errors import AnnopipeError

DEFAULT_CONFIG = Path("configs/annopipe.yaml")


@dataclass(frozen=True)
class NerConfig:
    model: str
    label_map: dict[str, str]
    patterns: list[dict]


@dataclass(frozen=True)
class RelationConfig:
    labels: list[str]
    symmetric: list[str]
    actor_labels: list[str]
    rules: list[dict]
    collective_subjects: list[str]


@dataclass(frozen=True)
class ParagraphConfig:
    encoder: str
    temperature: float
    labels: dict[str, str]
    quantize: bool = False


@dataclass(frozen=True)
class DoccanoConfig:
    """Where corrections happen. The server URL and login come from the environment, not from here."""

    project: str = "annopipe"
    collaborative: bool = True
    task_timeout_s: float = 600.0


@dataclass(frozen=True)
class Config:
    path: Path
    span_labels: list[str]
    ner: NerConfig
    relations: RelationConfig
    paragraphs: ParagraphConfig
    batch_size: int
    doccano: DoccanoConfig = DoccanoConfig()
    registry: Path = Path("models")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnnopipeError(f"{path}: config file not found; pass --config or run from the project root") from None
    except yaml.YAMLError as err:
        raise AnnopipeError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None


def _read_patterns(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise AnnopipeError(f"{path}: pattern file not found (named in the config)") from None
    patterns = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                patterns.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise AnnopipeError(f"{path}:{number}: not valid JSON ({err.msg})") from None
    return patterns


def _section(data: dict, key: str, where: Path) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise AnnopipeError(f"{where}: missing section '{key}'")
    return value


def _require(value: Any, what: str, where: Path) -> Any:
    if value in (None, "", [], {}):
        raise AnnopipeError(f"{where}: '{what}' is missing or empty")
    return value


def _check_labels(used: list[str], known: list[str], what: str, where: Path) -> None:
    for label in used:
        if label not in known:
            raise AnnopipeError(
                f"{where}: unknown label '{label}' in {what}; known labels are {', '.join(known)} (add it there first)"
            )


def load_config(path: Path | None = None) -> Config:
    """Load and check the config; `path` defaults to $ANNOPIPE_CONFIG, then ./configs/annopipe.yaml."""
    path = Path(path or os.environ.get("ANNOPIPE_CONFIG") or DEFAULT_CONFIG)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise AnnopipeError(f"{path}: expected a mapping of settings at the top level")
    base = path.parent
    span_labels = list(_require(data.get("span_labels"), "span_labels", path))

    ner_data = _section(data, "ner", path)
    label_map = dict(_require(ner_data.get("label_map"), "ner.label_map", path))
    _check_labels(list(label_map.values()), span_labels, "ner.label_map", path)
    patterns = _read_patterns(base / ner_data["patterns"]) if ner_data.get("patterns") else []
    _check_labels([p.get("label", "") for p in patterns], span_labels, f"{ner_data.get('patterns')}", path)
    ner = NerConfig(model=str(_require(ner_data.get("model"), "ner.model", path)), label_map=label_map, patterns=patterns)

    rel_data = _section(data, "relations", path)
    rel_labels = list(_require(rel_data.get("labels"), "relations.labels", path))
    rules_path = base / _require(rel_data.get("rules"), "relations.rules", path)
    rules_data = _read_yaml(rules_path) or {}
    rules = list(rules_data.get("rules") or [])
    for rule in rules:
        for key in ("name", "label", "pattern", "actor", "target"):
            if key not in rule:
                raise AnnopipeError(f"{rules_path}: rule {rule.get('name', '?')} has no '{key}'")
    _check_labels([r["label"] for r in rules], rel_labels, f"{rules_path.name}", path)
    _check_labels(list(rel_data.get("symmetric", [])), rel_labels, "relations.symmetric", path)
    actor_labels = list(rel_data.get("actor_labels") or span_labels)
    _check_labels(actor_labels, span_labels, "relations.actor_labels", path)
    relations = RelationConfig(
        labels=rel_labels,
        symmetric=list(rel_data.get("symmetric", [])),
        actor_labels=actor_labels,
        rules=rules,
        collective_subjects=[str(w).lower() for w in rules_data.get("collective_subjects", [])],
    )

    par_data = _section(data, "paragraphs", path)
    par_labels = dict(_require(par_data.get("labels"), "paragraphs.labels", path))
    paragraphs = ParagraphConfig(
        encoder=str(_require(par_data.get("encoder"), "paragraphs.encoder", path)),
        temperature=float(par_data.get("temperature", 0.05)),
        labels={str(k): str(v) for k, v in par_labels.items()},
        quantize=bool(par_data.get("quantize", False)),
    )
    batch_size = int(data.get("batch_size", 64))
    if batch_size < 1:
        raise AnnopipeError(f"{path}: batch_size must be at least 1")
    doc_data = data.get("doccano") or {}
    if not isinstance(doc_data, dict):
        raise AnnopipeError(f"{path}: 'doccano' must be a mapping of settings")
    doccano = DoccanoConfig(
        project=str(doc_data.get("project", DoccanoConfig.project)),
        collaborative=bool(doc_data.get("collaborative", DoccanoConfig.collaborative)),
        task_timeout_s=float(doc_data.get("task_timeout_s", DoccanoConfig.task_timeout_s)),
    )
    registry = base / str(data.get("registry", "../models"))
    return Config(path, span_labels, ner, relations, paragraphs, batch_size, doccano, registry)
