"""Fine-tuning the paragraph-label classifier: MiniLM plus a softmax head over the paragraph labels.

Only records with a paragraph label take part. Early stopping watches macro-F1 on the
development records (the labels are unbalanced: DIPLOMACY is about 40% of the gold), the
loss weighs classes by inverse frequency, and the temperature fitted on the development logits
makes the scores calibrated probabilities (`TrainedParagraphClassifier` loads the result).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from annopipe.config import Config
from annopipe.errors import AnnopipeError
from annopipe.evaluation import label_scores
from annopipe.nlp.paragraphs import SentenceEncoder
from annopipe.records import Record
from annopipe.training.classifier import Settings, epoch_reporter, fine_tune, save_classifier
from annopipe.training.data import TrainingData

if TYPE_CHECKING:
    from annopipe.registry import ModelVersion
    from annopipe.tasks import OnEpoch


def _labelled(records: list[Record], labels: list[str], what: str) -> tuple[list[str], list[str]]:
    pairs = [(r.text, r.label.label) for r in records if r.label is not None]
    unknown = sorted({label for _, label in pairs} - set(labels))
    if unknown:
        raise AnnopipeError(f"{what} paragraph label {unknown[0]!r} is not among the labels given ({', '.join(labels)})")
    return [t for t, _ in pairs], [label for _, label in pairs]


def train_paragraph_model(
    train: list[Record],
    dev: list[Record],
    labels: list[str],
    encoder: str | Path,
    out_dir: Path,
    seed: int = 0,
    epochs: int = 10,
    *,
    batch_size: int = 8,
    learning_rate: float | None = None,
    patience: int = 3,
    max_length: int = 256,
    class_weights: bool = True,
    pooling: str = "mean",
    frozen_layers: int = 4,
    descriptions: dict[str, str] | None = None,
    description_temperature: float = 0.05,
    progress=None,
) -> dict:
    """Train, calibrate and save a paragraph classifier into `out_dir`; returns its development figures.

    With `descriptions` (label -> one-line description, as in the config's `paragraphs.labels`)
    and mean pooling, the classifier starts as the zero-shot model: its linear layer holds the
    descriptions' embeddings divided by `description_temperature`, so training only has to improve
    on model zero, and model zero itself (epoch 0) is kept when no epoch beats it on `dev`.
    `pooling="cls"` trains a plain `AutoModelForSequenceClassification` instead. The learning rate
    defaults to 2e-5 from the zero-shot start (higher rates forget it within an epoch or two:
    measured on the gold set) and 8e-5 from a random head.
    """
    train_texts, train_labels = _labelled(train, labels, "training")
    dev_texts, dev_labels = _labelled(dev, labels, "development")
    index = {label: i for i, label in enumerate(labels)}

    def dev_score(logits: torch.Tensor) -> float:
        predicted = [labels[int(i)] for i in logits.argmax(dim=-1)]
        scores = label_scores(dev_labels, predicted)
        return scores["macro_f1"] + 1e-3 * scores["accuracy"]  # accuracy breaks ties

    head_init = None
    if descriptions is not None and pooling == "mean":
        missing = [label for label in labels if label not in descriptions]
        if missing:
            raise AnnopipeError(f"no description for paragraph label {missing[0]!r}")
        zero_shot = SentenceEncoder(str(encoder))
        head_init = zero_shot([f"{label}: {descriptions[label]}" for label in labels]) / description_temperature
        del zero_shot
    if learning_rate is None:
        learning_rate = 2e-5 if head_init is not None else 8e-5
    settings = Settings(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, patience=patience,
                        max_length=max_length, class_weights=class_weights, seed=seed, pooling=pooling,
                        frozen_layers=frozen_layers)
    result = fine_tune(
        train_texts, [index[label] for label in train_labels], dev_texts, [index[label] for label in dev_labels],
        labels, encoder, dev_score, settings, None, progress, head_init=head_init,
    )
    predicted = [labels[int(i)] for i in result.dev_probabilities().argmax(dim=-1)]
    figures = {
        "task": "paragraphs",
        "labels": labels,
        "dev": label_scores(dev_labels, predicted),
        "ece": {"before": result.ece_before, "after": result.ece_after},
        "temperature": round(result.temperature, 4),
        "best_epoch": result.best_epoch,
        "history": result.history,
        "train_seconds": result.seconds,
        "examples": {"train": dict(Counter(train_labels)), "dev": dict(Counter(dev_labels))},
        "start": "zero-shot label embeddings" if head_init is not None else "random head",
        "seed": seed,
    }
    save_classifier(result, Path(out_dir), "paragraphs",
                    {"figures": {k: figures[k] for k in ("dev", "ece", "examples", "seed")}})
    return figures


# -- the task's spec functions (annopipe.tasks) --------------------------------------------------------


def _score(model, records: list[Record]) -> dict:
    labelled = [r for r in records if r.label]
    predicted = model([r.text for r in labelled])
    result = label_scores([r.label.label for r in labelled], [p.label if p else None for p in predicted])
    return {"score": result["macro_f1"], **result}


def fit(data: TrainingData, config: Config, out: Path, seed: int, unlabelled: list[str], max_epochs: int,
        on_epoch: OnEpoch | None) -> tuple[dict, dict]:
    """Fine-tune MiniLM from the zero-shot head on the gold paragraph labels."""
    from annopipe.nlp.paragraphs import TrainedParagraphClassifier

    labels = list(config.paragraphs.labels)
    train, dev, test = (data.splits[name] for name in ("train", "dev", "test"))
    figures = train_paragraph_model(train, dev, labels, config.paragraphs.encoder, out, seed=seed,
                                    epochs=min(max_epochs, 20), descriptions=config.paragraphs.labels,
                                    description_temperature=config.paragraphs.temperature,
                                    progress=epoch_reporter(on_epoch, min(max_epochs, 20)))
    model = TrainedParagraphClassifier(out)
    metrics = {**figures, "dev": _score(model, dev), "test": _score(model, test)}
    return metrics, {"labels": labels}


def score_versions(config: Config, version: ModelVersion | None, splits: list[list[Record]]) -> list[dict]:
    from annopipe.nlp.paragraphs import load

    model = load(config, version)
    return [_score(model, records) for records in splits]
