"""One small fine-tuning loop for sequence classifiers on CPU, shared by the relation and paragraph models.

`fine_tune` trains `AutoModelForSequenceClassification` on top of an encoder folder (MiniLM by
default) with a plain torch loop: AdamW with linear warm-up and decay, dynamic padding (batches
padded to their own longest example, about 6x faster than padding everything to 128 on this
CPU), a fixed seed, early stopping on a development score with patience, and the best epoch's
weights kept. Afterwards one temperature is fitted on the development logits (LBFGS on the
negative log-likelihood), so that `softmax((logits + bias) / T)` are calibrated probabilities;
the expected calibration error before and after is part of the result.

`save_classifier` writes what `annopipe.nlp.paragraphs.CalibratedClassifier` loads: the weights
(`save_pretrained`), the tokenizer and `annopipe.json` (labels, temperature, logit bias,
max_length, task and whatever the task adds: markers, candidate policy, metrics).
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from annopipe.atomic import atomic_path
from annopipe.errors import AnnopipeError
from annopipe.nlp.paragraphs import MODEL_CARD, PooledClassifier, marker_positions, sequence_logits

DevScore = Callable[[torch.Tensor], float]  # development logits (bias added, no temperature) -> higher is better


@dataclass(frozen=True)
class Settings:
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    patience: int = 3
    max_length: int = 128
    class_weights: bool = False
    seed: int = 0
    threads: int = 2
    pooling: str = "cls"  # "cls": AutoModelForSequenceClassification; "markers" or "mean": PooledClassifier


@dataclass
class FitResult:
    model: torch.nn.Module
    tokenizer: object
    labels: list[str]
    temperature: float
    logit_bias: list[float]
    best_epoch: int
    best_score: float
    dev_logits: torch.Tensor  # bias added, before the temperature
    seconds: float
    ece_before: float
    ece_after: float
    max_length: int
    pooling: str
    history: list[dict] = field(default_factory=list)

    def dev_probabilities(self) -> torch.Tensor:
        return torch.softmax(self.dev_logits / self.temperature, dim=-1)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def encode(
    tokenizer, texts: list[str], labels: list[int], max_length: int, markers: list[tuple[int, int]] | None = None
) -> Dataset:
    """A `datasets.Dataset` of token ids and labels (and marker token positions), unpadded: batches
    are padded when drawn."""
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    columns = {**encoded, "labels": labels}
    if markers is not None:
        columns["markers"] = marker_positions(encoded, markers)
    return Dataset.from_dict(columns)


def _batches(dataset: Dataset, tokenizer, batch_size: int, rng: random.Random):
    """Shuffled batches, each padded to its longest example; examples of similar length are drawn
    together (sorted within shuffled pools of 20 batches), which keeps padding small."""
    order = list(range(len(dataset)))
    rng.shuffle(order)
    pool = batch_size * 20
    lengths = [len(ids) for ids in dataset["input_ids"]]
    batches = []
    for at in range(0, len(order), pool):
        chunk = sorted(order[at : at + pool], key=lambda i: lengths[i])
        batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    for indices in batches:
        yield tokenizer.pad(dataset[indices], return_tensors="pt")


def _class_weights(labels: list[int], n: int) -> torch.Tensor:
    """Balanced weights n_examples / (n_classes * count), 1 for classes without examples."""
    counts = np.bincount(labels, minlength=n)
    present = int((counts > 0).sum())
    return torch.tensor(
        [len(labels) / (present * c) if c else 1.0 for c in counts], dtype=torch.float32
    )


def _nll(logits: torch.Tensor, labels: list[int]) -> float:
    return float(torch.nn.functional.cross_entropy(logits, torch.tensor(labels))) if labels else 0.0


def fit_temperature(logits: torch.Tensor, labels: list[int]) -> float:
    """The one temperature T > 0 minimising the NLL of softmax(logits / T) (LBFGS on log T)."""
    if len(labels) == 0:
        return 1.0
    target = torch.tensor(labels)
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), target)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    return temperature if math.isfinite(temperature) and temperature > 0 else 1.0


def expected_calibration_error(probs: torch.Tensor, labels: list[int], bins: int = 10) -> float:
    """ECE of the top label: |accuracy - confidence| per equal-width confidence bin, weighted by size."""
    if len(labels) == 0:
        return 0.0
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == torch.tensor(labels)).float()
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            ece += float(inside.float().mean()) * abs(float(correct[inside].mean() - confidence[inside].mean()))
    return round(ece, 4)


def fine_tune(
    train_texts: list[str],
    train_labels: list[int],
    dev_texts: list[str],
    dev_labels: list[int],
    labels: list[str],
    encoder_dir: Path,
    dev_score: DevScore,
    settings: Settings = Settings(),
    logit_bias: list[float] | None = None,
    progress: Callable[[dict], None] | None = None,
    train_markers: list[tuple[int, int]] | None = None,
    dev_markers: list[tuple[int, int]] | None = None,
    head_init: torch.Tensor | None = None,
) -> FitResult:
    """Fine-tune a classifier and calibrate it; see the module docstring.

    `dev_score` rates the development logits after each epoch (the task's own metric, e.g.
    relation F1); the epoch with the highest score wins. `logit_bias` is added to the logits
    before scoring and calibration (the relation task uses it to undo negative subsampling).
    With `settings.pooling == "markers"`, `train_markers` and `dev_markers` give the character
    positions of the two entity markers in each text. `head_init` (labels x pooled width) starts
    the linear layer of a pooled classifier from given weights (the paragraph task starts from the
    zero-shot model's label embeddings).
    """
    if not train_texts:
        raise AnnopipeError("no training examples: the training records have nothing to learn from")
    torch.set_num_threads(settings.threads)
    set_seed(settings.seed)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    if settings.pooling == "markers" and (train_markers is None or (dev_texts and dev_markers is None)):
        raise AnnopipeError("pooling at markers needs the markers' positions in the texts")
    if settings.pooling in PooledClassifier.POOLINGS:
        model = PooledClassifier.from_encoder(encoder_dir, len(labels), settings.pooling)
        if head_init is not None:
            with torch.no_grad():
                model.classifier.weight.copy_(head_init)
                model.classifier.bias.zero_()
    else:
        train_markers = dev_markers = None
        model = AutoModelForSequenceClassification.from_pretrained(
            encoder_dir,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            ignore_mismatched_sizes=True,
        )
    train_set = encode(tokenizer, train_texts, train_labels, settings.max_length, train_markers)
    bias = torch.tensor(logit_bias or [0.0] * len(labels))
    weights = _class_weights(train_labels, len(labels)) if settings.class_weights else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    decay = [p for n, p in model.named_parameters() if not any(k in n for k in ("bias", "LayerNorm"))]
    no_decay = [p for n, p in model.named_parameters() if any(k in n for k in ("bias", "LayerNorm"))]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.learning_rate,
    )
    steps = settings.epochs * math.ceil(len(train_set) / settings.batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * steps), steps)
    rng = random.Random(settings.seed)

    def dev_logits() -> torch.Tensor:
        return sequence_logits(model, tokenizer, dev_texts, settings.max_length, 64, dev_markers) + bias

    best_state, best_score, best_epoch, best_logits = None, (-math.inf, -math.inf), 0, None
    history, waited = [], 0
    if head_init is not None and dev_texts:
        # a model that starts as something useful (the zero-shot classifier) is a candidate too:
        # when no epoch beats it on dev, it is what comes back (epoch 0)
        logits = dev_logits()
        best_score = (float(dev_score(logits)), -_nll(logits, dev_labels))
        best_state, best_logits = copy.deepcopy(model.state_dict()), logits
        history.append({"epoch": 0, "dev_score": round(best_score[0], 4), "dev_loss": round(-best_score[1], 4),
                        "seconds": round(time.perf_counter() - started, 1)})
    for epoch in range(1, settings.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for batch in _batches(train_set, tokenizer, settings.batch_size, rng):
            target = batch.pop("labels")
            loss = loss_fn(model(**batch).logits, target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total += loss.item() * len(target)
            seen += len(target)
        logits = dev_logits()
        score = float(dev_score(logits)) if dev_texts else 0.0
        loss = _nll(logits, dev_labels) if dev_texts else total / seen
        history.append({"epoch": epoch, "train_loss": round(total / seen, 4), "dev_score": round(score, 4),
                        "dev_loss": round(loss, 4), "seconds": round(time.perf_counter() - started, 1)})
        if progress:
            progress(history[-1])
        # the task's score decides; the development loss breaks ties, so that epochs in which the
        # score has not moved yet (a rare class not predicted at all) still count as progress
        if (score, -loss) > best_score:
            best_state = copy.deepcopy(model.state_dict())
            best_score, best_epoch, best_logits, waited = (score, -loss), epoch, logits, 0
        else:
            waited += 1
            if waited >= settings.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    temperature = fit_temperature(best_logits, dev_labels)
    return FitResult(
        model=model,
        tokenizer=tokenizer,
        labels=list(labels),
        temperature=temperature,
        logit_bias=[float(b) for b in bias],
        best_epoch=best_epoch,
        best_score=best_score[0],
        dev_logits=best_logits,
        seconds=round(time.perf_counter() - started, 1),
        ece_before=expected_calibration_error(torch.softmax(best_logits, dim=-1), dev_labels),
        ece_after=expected_calibration_error(torch.softmax(best_logits / temperature, dim=-1), dev_labels),
        max_length=settings.max_length,
        pooling=settings.pooling,
        history=history,
    )


def save_classifier(result: FitResult, out_dir: Path, task: str, extra: dict | None = None) -> Path:
    """Weights, tokenizer and annopipe.json into `out_dir`, written beside it first and then moved
    into place, so a crash never leaves a half-written model where a loader would find it."""
    with atomic_path(Path(out_dir)) as partial:
        result.model.save_pretrained(partial)
        result.tokenizer.save_pretrained(partial)
        _write_card(result, partial, task, extra)
    return Path(out_dir)


def _write_card(result: FitResult, folder: Path, task: str, extra: dict | None) -> None:
    card = {
        "task": task,
        "labels": result.labels,
        "temperature": result.temperature,
        "logit_bias": dict(zip(result.labels, result.logit_bias)),
        "max_length": result.max_length,
        "pooling": result.pooling,
        "best_epoch": result.best_epoch,
        "ece_dev": {"before": result.ece_before, "after": result.ece_after},
        "train_seconds": result.seconds,
        **(extra or {}),
    }
    (folder / MODEL_CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
