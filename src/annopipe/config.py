"""The project configuration (`configs/annopipe.yaml`), typed and checked on load.

A pip-installed annopipe runs from any folder: without --config it takes $ANNOPIPE_CONFIG, else the
project's ./configs/annopipe.yaml, else ./annopipe.yaml (what `annopipe init` writes), else the
default shipped inside the package (`annopipe/defaults/`), whose model registry is ./models in the
current folder, never inside site-packages.

Every label used anywhere (label map, entity-ruler patterns, relation rules, paragraph labels)
is checked against the declared label sets here, so a typo fails at start-up with the file and the
label named instead of silently producing nothing. Secrets never live in this file: anything
secret comes from the environment at the edge that needs it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from annopipe import atomic
from annopipe.errors import AnnopipeError

PROJECT_CONFIG = Path("configs/annopipe.yaml")
INIT_CONFIG = Path("annopipe.yaml")
SHIPPED_DIR = Path(__file__).parent / "defaults"
SHIPPED_CONFIG = SHIPPED_DIR / INIT_CONFIG.name
# What `annopipe init` copies: the config and the files it names.
SHIPPED_FILES = (SHIPPED_CONFIG.name, "topics.jsonl", "relation_rules.yaml")


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
    unasserted_modals: list[str] = field(default_factory=list)
    references: dict[str, list[str]] = field(default_factory=dict)
    push_min_precision: float = 0.0
    candidate_window: int = 0
    resolve_references: bool = True
    refusal_verbs: list[str] = field(default_factory=list)


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


def _read_yaml(path: Path, missing: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnnopipeError(f"{path}: {missing}") from None
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


def config_path(path: Path | None = None) -> Path:
    """The config to use: `path`, $ANNOPIPE_CONFIG, ./configs/annopipe.yaml, ./annopipe.yaml, the shipped default.

    A path that was named (argument or environment) is returned even if missing, so that a typo is
    reported instead of silently falling back to another config.
    """
    named = path or os.environ.get("ANNOPIPE_CONFIG")
    if named:
        return Path(named)
    return next((candidate for candidate in (PROJECT_CONFIG, INIT_CONFIG) if candidate.is_file()), SHIPPED_CONFIG)


def write_default_config(folder: Path, overwrite: bool = False) -> list[Path]:
    """Copy the shipped default config and the files it names into `folder`, to edit; returns what was written.

    Existing files are refused (all checked before anything is written) unless `overwrite`, so that
    `init` never destroys a project's edited rules.
    """
    targets = [folder / name for name in SHIPPED_FILES]
    for target in targets:
        if target.exists() and not overwrite:
            raise AnnopipeError(f"{target}: already exists; edit it, or pass --force to replace it with the default")
    folder.mkdir(parents=True, exist_ok=True)
    for target in targets:
        atomic.write_text(target, (SHIPPED_DIR / target.name).read_text(encoding="utf-8"))
    return targets


def load_config(path: Path | None = None) -> Config:
    """Load and check the config that `config_path` picks."""
    path = config_path(path)
    data = _read_yaml(path, "config file not found; `annopipe init` writes one to edit")
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
    rules_data = _read_yaml(rules_path, "rules file not found (named in the config)") or {}
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
        unasserted_modals=[str(w).lower() for w in rules_data.get("unasserted_modals", [])],
        refusal_verbs=[str(w).lower() for w in rules_data.get("refusal_verbs", [])],
        references={str(label): [str(w).lower() for w in words]
                    for label, words in (rules_data.get("references") or {}).items()},
        push_min_precision=float(rel_data.get("push_min_precision", RelationConfig.push_min_precision)),
        candidate_window=int(rel_data.get("candidate_window", RelationConfig.candidate_window)),
        resolve_references=bool(rel_data.get("resolve_references", RelationConfig.resolve_references)),
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
    # The shipped default lives in site-packages, which is no place for trained models.
    registry_base = Path() if path.resolve() == SHIPPED_CONFIG.resolve() else base
    registry = registry_base / str(data.get("registry", "../models"))
    return Config(path, span_labels, ner, relations, paragraphs, batch_size, doccano, registry)
