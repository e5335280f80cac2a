"""One small fine-tuning loop for sequence classifiers on CPU, shared by the relation and paragraph models.

`fine_tune` trains `AutoModelForSequenceClassification` on top of an encoder folder (MiniLM by
default) with a plain torch loop: AdamW with linear warm-up and decay, dynamic padding (batches
padded to their own longest example, about 6x faster than padding everything to 128 on this
CPU), a fixed seed, early stopping on a development score with patience, and the best epoch's
weights kept. Afterwards one temperature is fitted on the development logits (LBFGS on the
negative log-likelihood), so that `softmax((logits + bias) / T)` are calibrated probabilities;
the expected calibration error before and after is part of the result.

With `frozen_layers` (the relation and paragraph tasks keep MiniLM's bottom 3 and 4 of 6 layers as
the encoder package ships them) the frozen layers' output is computed once per example before the
first epoch and each epoch trains only the layers above: CrossRE's benchmark trained in 203 s
instead of 349–357 s with every layer trained, at the same dev micro-F1 (docs/figures.md).

`save_classifier` writes what `annopipe.nlp.paragraphs.CalibratedClassifier` loads: the trained
weights (with frozen layers only the top layers, in float16, and the head: the file sizes make a
version small enough to commit), the tokenizer when the whole encoder was trained, and
`annopipe.json` (labels, temperature, logit bias, max_length, encoder and its version, task and
whatever the task adds: markers, candidate policy, metrics).
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from annopipe.atomic import atomic_path
from annopipe.errors import AnnopipeError
from annopipe.nlp.paragraphs import (
    MODEL_CARD,
    PooledClassifier,
    encoder_path,
    encoder_version,
    group_rows,
    marker_positions,
    sequence_logits,
)

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
    frozen_layers: int = 0  # bottom encoder layers kept as shipped (see PooledClassifier); cls trains all


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
    encoder: str
    frozen_layers: int
    history: list[dict] = field(default_factory=list)

    def dev_probabilities(self) -> torch.Tensor:
        return torch.softmax(self.dev_logits / self.temperature, dim=-1)


def epoch_reporter(on_epoch, epochs: int) -> Callable[[dict], None] | None:
    """`fine_tune`'s per-epoch history entry passed on as an `annopipe.tasks.OnEpoch` call."""
    if on_epoch is None:
        return None
    return lambda h: on_epoch(h["epoch"], epochs, h["train_loss"], h["dev_score"])


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Encoded:
    """Classifier examples over their distinct texts: a row is one label; rows that share a text
    (the candidate pairs of one paragraph) share its encoding, and its frozen layers' states."""

    texts: Dataset  # one row per distinct text: token ids, unpadded (batches are padded when drawn)
    rows: list[list[int]]  # for each distinct text, the rows that show it
    labels: list[int]
    markers: list[list[int]] | None  # per row, the token positions of its two markers

    def batch(self, texts: list[int], tokenizer, states: list[torch.Tensor] | None = None):
        """Model inputs for some distinct texts, padded; the rows they show; and for each of those
        rows, the position of its text in the batch."""
        inputs = dict(tokenizer.pad(self.texts[texts], return_tensors="pt"))
        rows = [row for t in texts for row in self.rows[t]]
        position = torch.tensor([p for p, t in enumerate(texts) for _ in self.rows[t]])
        if states is not None:
            inputs["lower_states"] = _padded([states[t] for t in texts], inputs["input_ids"].shape[1])
        if self.markers is not None:
            inputs["markers"] = torch.tensor([self.markers[row] for row in rows])
            inputs["rows"] = position
        return inputs, rows, position


def encode(
    tokenizer, texts: list[str], labels: list[int], max_length: int, markers: list[tuple[int, int]] | None = None
) -> Encoded:
    """Token ids of the distinct texts and each row's label (and marker token positions)."""
    distinct, rows_of = group_rows(texts)
    encoded = tokenizer(distinct, truncation=True, max_length=max_length)
    token_markers = None
    if markers is not None:
        text_of = {row: t for t, rows in enumerate(rows_of) for row in rows}
        token_markers = marker_positions(encoded, markers, [text_of[row] for row in range(len(texts))])
    return Encoded(Dataset.from_dict(dict(encoded)), rows_of, list(labels), token_markers)


def _row_logits(model, inputs: dict, position: torch.Tensor) -> torch.Tensor:
    """One row of logits per example row: a pair classifier gathers its rows' pairs itself; a text
    classifier gives one per text, repeated for every row that shows it."""
    logits = model(**inputs).logits
    return logits if "rows" in inputs else logits[position]


def _batches(encoded: Encoded, tokenizer, batch_size: int, rng: random.Random, states: list | None = None):
    """Shuffled batches of `batch_size` distinct texts with all their rows, each padded to its
    longest text; texts of similar length are drawn together (sorted within shuffled pools of 20
    batches), which keeps padding small. With the texts' `states` after the frozen layers
    (`_lower_states`), each batch carries them padded too."""
    order = list(range(len(encoded.rows)))
    rng.shuffle(order)
    pool = batch_size * 20
    lengths = [len(ids) for ids in encoded.texts["input_ids"]]
    batches = []
    for at in range(0, len(order), pool):
        chunk = sorted(order[at : at + pool], key=lambda i: lengths[i])
        batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    for texts in batches:
        yield encoded.batch(texts, tokenizer, states)


def _padded(states: list[torch.Tensor], length: int) -> torch.Tensor:
    out = torch.zeros(len(states), length, states[0].shape[-1])
    for row, state in enumerate(states):
        out[row, : state.shape[0]] = state
    return out


def _lower_states(model, encoded: Encoded, tokenizer, batch_size: int = 64) -> list[torch.Tensor]:
    """Every distinct text's hidden states after the frozen layers, unpadded (float32, so that
    development scores are those of the saved model: about 150 kB per 100 word pieces)."""
    texts = encoded.texts
    states: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    lengths = [len(ids) for ids in texts["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    for at in range(0, len(order), batch_size):
        chunk = order[at : at + batch_size]
        batch = tokenizer.pad(texts[chunk], return_tensors="pt")
        hidden = model.lower(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        for row, i in enumerate(chunk):
            states[i] = hidden[row, : lengths[i]].clone()
    return states


def _cached_logits(model, encoded: Encoded, states: list[torch.Tensor], tokenizer, batch_size: int = 64):
    """Logits of the trained top of a classifier from cached lower states, one per row, in row order."""
    logits = torch.empty(len(encoded.labels), model.num_labels)
    order = sorted(range(len(states)), key=lambda i: states[i].shape[0])
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for at in range(0, len(order), batch_size):
            inputs, rows, position = encoded.batch(order[at : at + batch_size], tokenizer, states)
            logits[rows] = _row_logits(model, inputs, position).float()
    model.train(was_training)
    return logits


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
    encoder: str | Path,
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
    zero-shot model's label embeddings). `encoder` is the encoder package's name (what a saved
    compact classifier names to be loaded on another machine) or a folder.
    """
    if not train_texts:
        raise AnnopipeError("no training examples: the training records have nothing to learn from")
    torch.set_num_threads(settings.threads)
    set_seed(settings.seed)
    started = time.perf_counter()
    encoder_dir = encoder_path(str(encoder))
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    if settings.pooling in PooledClassifier.PAIR_POOLINGS and (
            train_markers is None or (dev_texts and dev_markers is None)):
        raise AnnopipeError("pooling at markers needs the markers' positions in the texts")
    if settings.pooling in PooledClassifier.POOLINGS:
        model = PooledClassifier.from_encoder(encoder_dir, len(labels), settings.pooling, settings.frozen_layers)
        if head_init is not None:
            with torch.no_grad():
                model.classifier.weight.copy_(head_init)
                model.classifier.bias.zero_()
    else:
        settings = replace(settings, frozen_layers=0)  # a cls classifier trains every layer
        train_markers = dev_markers = None
        model = AutoModelForSequenceClassification.from_pretrained(
            encoder_dir,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            ignore_mismatched_sizes=True,
        )
    train_set = encode(tokenizer, train_texts, train_labels, settings.max_length, train_markers)
    dev_set = encode(tokenizer, dev_texts, dev_labels, settings.max_length, dev_markers) if dev_texts else None
    # the frozen layers' output never changes: computed once, not in every epoch
    train_states = _lower_states(model, train_set, tokenizer) if settings.frozen_layers else None
    dev_states = _lower_states(model, dev_set, tokenizer) if settings.frozen_layers and dev_set else None
    bias = torch.tensor(logit_bias or [0.0] * len(labels))
    weights = _class_weights(train_labels, len(labels)) if settings.class_weights else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trained if not any(k in n for k in ("bias", "LayerNorm"))]
    no_decay = [p for n, p in trained if any(k in n for k in ("bias", "LayerNorm"))]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.learning_rate,
    )
    steps = settings.epochs * math.ceil(len(train_set.rows) / settings.batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * steps), steps)
    rng = random.Random(settings.seed)

    def dev_logits() -> torch.Tensor:
        if dev_states is not None:
            return _cached_logits(model, dev_set, dev_states, tokenizer) + bias
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
        for inputs, rows, position in _batches(train_set, tokenizer, settings.batch_size, rng, train_states):
            target = torch.tensor([train_set.labels[row] for row in rows])
            loss = loss_fn(_row_logits(model, inputs, position), target)
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
    if settings.frozen_layers:  # saved in float16: score and calibrate what will be saved
        model.round_top_to_half()
        if dev_texts:
            best_logits = dev_logits()
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
        encoder=str(encoder),
        frozen_layers=settings.frozen_layers,
        history=history,
    )


def save_classifier(result: FitResult, out_dir: Path, task: str, extra: dict | None = None) -> Path:
    """Weights, tokenizer and annopipe.json into `out_dir`, written beside it first and then moved
    into place, so a crash never leaves a half-written model where a loader would find it."""
    with atomic_path(Path(out_dir)) as partial:
        result.model.save_pretrained(partial)
        if not result.frozen_layers:  # a compact classifier uses its encoder package's tokenizer
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
        "encoder": result.encoder,
        "encoder_version": encoder_version(result.encoder),
        "frozen_layers": result.frozen_layers,
        "best_epoch": result.best_epoch,
        "ece_dev": {"before": result.ece_before, "after": result.ece_after},
        "train_seconds": result.seconds,
        **(extra or {}),
    }
    (folder / MODEL_CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
