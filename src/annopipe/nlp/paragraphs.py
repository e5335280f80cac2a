"""Paragraph labels, model zero: zero-shot by sentence-embedding similarity.

Each label has a one-line description in the config; a paragraph gets the label whose
description embedding (MiniLM, mean-pooled and normalised, as sentence-transformers does) is
closest by cosine. The score is the softmax of the cosine similarities divided by the configured
temperature: it ranks paragraphs by how clearly one label wins, and sums to one over labels, but
it is not a calibrated probability.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from installed packages, never a hub

import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging

from annopipe.config import Config, ParagraphConfig
from annopipe.documents import content_hash
from annopipe.errors import AnnopipeError
from annopipe.records import ParagraphLabel

if TYPE_CHECKING:
    from annopipe.registry import ModelVersion

ParagraphModel = Callable[[list[str]], list[ParagraphLabel | None]]
MAX_TOKENS = 256
CHUNK = 16  # texts per forward pass, grouped by length so padding stays small
transformers_logging.set_verbosity_error()
transformers_logging.disable_progress_bar()


def encoder_path(name: str) -> Path:
    """The model folder of an encoder named by folder or by a package that ships one under model/."""
    if Path(name).is_dir():
        return Path(name)
    spec = importlib.util.find_spec(name) if name.isidentifier() else None
    if spec is None or spec.origin is None:
        raise AnnopipeError(f"encoder '{name}' is neither a folder nor an installed package; check paragraphs.encoder")
    return Path(spec.origin).parent / "model"


def encoder_version(name: str) -> str:
    if Path(name).is_dir():
        return f"{Path(name).name}@{content_hash(str(Path(name).resolve()))[:8]}"
    try:
        return f"{name}@{importlib.metadata.version(name.replace('_', '-'))}"
    except importlib.metadata.PackageNotFoundError:
        return name


class SentenceEncoder:
    """Mean-pooled, L2-normalised transformer embeddings (as sentence-transformers computes them).

    Texts are encoded in small chunks of similar length, so little compute goes to padding.
    With `quantize`, the linear layers run as dynamic int8 (torch's `quantize_dynamic`): about
    2.8x faster on this project's 2-core CPU; the effect on paragraph labels is measured in the
    README's figures, not assumed.
    """

    def __init__(self, name: str, quantize: bool = False):
        path = encoder_path(name)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        if quantize:
            with warnings.catch_warnings():  # torch flags eager quantization as legacy; it is pinned
                warnings.simplefilter("ignore")
                self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = torch.empty(len(texts), self.model.config.hidden_size)
        for at in range(0, len(order), CHUNK):
            chunk = order[at : at + CHUNK]
            batch = self.tokenizer(
                [texts[i] for i in chunk], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vectors[chunk] = torch.nn.functional.normalize(pooled, dim=-1)
        return vectors


class ZeroShotParagraphClassifier:
    def __init__(self, config: ParagraphConfig):
        self.config = config
        self.labels = list(config.labels)
        self.encoder = SentenceEncoder(config.encoder, quantize=config.quantize)
        self.label_vectors = self.encoder([f"{label}: {text}" for label, text in config.labels.items()])
        self.version = paragraph_version(config)

    def __call__(self, texts: list[str]) -> list[ParagraphLabel]:
        similarities = self.encoder(texts) @ self.label_vectors.T
        probs = torch.softmax(similarities / self.config.temperature, dim=-1)
        best = probs.argmax(dim=-1)
        return [ParagraphLabel(self.labels[int(i)], round(float(probs[row, i]), 4)) for row, i in enumerate(best)]


def zero_version(config: Config) -> str:
    return paragraph_version(config.paragraphs)


def load(config: Config, version: ModelVersion | None, nlp: object = None) -> ParagraphModel:
    """The fine-tuned classifier of a registered version, or the zero-shot one (neither needs spaCy)."""
    return TrainedParagraphClassifier(version.model_dir) if version else ZeroShotParagraphClassifier(config.paragraphs)


def paragraph_version(config: ParagraphConfig) -> str:
    settings = json.dumps([config.labels, config.temperature, config.quantize], sort_keys=True)
    return f"zeroshot:{encoder_version(config.encoder)}+labels.{content_hash(settings)[:8]}"


# --- fine-tuned classifiers (saved by annopipe.training) ---------------------------------------

MODEL_CARD = "annopipe.json"  # labels, temperature, logit bias, max_length, task, markers, policy


def model_fingerprint(model_dir: Path) -> str:
    """12 hex digits of the SHA-256 of a saved classifier's annopipe.json and weights: its version."""
    import hashlib

    digest = hashlib.sha256()
    for name in (MODEL_CARD, "model.safetensors", "pytorch_model.bin", PooledClassifier.HEAD_FILE):
        path = model_dir / name
        if path.exists():
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:12]


def marker_positions(encoding, markers: list[tuple[int, int]]) -> list[list[int]]:
    """Token indices of the two markers' first characters (0, the [CLS] token, where truncated away)."""
    positions = []
    for row, chars in enumerate(markers):
        found = [encoding.char_to_token(row, char) for char in chars]
        positions.append([0 if token is None else token for token in found])
    return positions


def sequence_logits(
    model, tokenizer, texts: list[str], max_length: int, batch_size: int = 32,
    markers: list[tuple[int, int]] | None = None,
) -> torch.Tensor:
    """Raw logits of a classifier, in `texts` order; batches of similar length, no gradients.

    `markers` (the character positions of the two entity markers in each text) are passed on to
    a `PooledClassifier` that pools there.
    """
    logits = torch.empty(len(texts), model.num_labels)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for at in range(0, len(order), batch_size):
            chunk = order[at : at + batch_size]
            batch = tokenizer(
                [texts[i] for i in chunk], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            inputs = dict(batch)
            if markers is not None:
                inputs["markers"] = torch.tensor(marker_positions(batch, [markers[i] for i in chunk]))
            logits[chunk] = model(**inputs).logits.float()
    model.train(was_training)
    return logits


class PooledClassifier(torch.nn.Module):
    """An encoder and a linear layer over a pooled vector: the two entity markers' first tokens
    ("markers") or the normalised mean of all tokens ("mean", as sentence-transformers pools).

    Entity-start pooling (Baldini Soares et al. 2019; Zhou & Chen 2022) tells the relation
    classifier directly which two spans the question is about; the [CLS] vector of a sequence
    classifier has to learn that from the markers first, which a few hundred examples do not teach
    it (measured on a by-document split of the gold set: [CLS] at most 0.20 dev micro-F1 after 12
    epochs, marker pooling 0.34). Mean pooling is what MiniLM was
    trained for, so the zero-shot paragraph model is this with the label descriptions' embeddings
    (over its temperature) as the linear layer: fine-tuning can start from model zero.
    Saved as the encoder (`save_pretrained`) plus `pooled_head.safetensors`.
    """

    HEAD_FILE = "pooled_head.safetensors"
    POOLINGS = ("markers", "mean")

    def __init__(self, encoder, num_labels: int, pooling: str, dropout: float = 0.1):
        super().__init__()
        if pooling not in self.POOLINGS:
            raise AnnopipeError(f"unknown pooling {pooling!r}; use one of {', '.join(self.POOLINGS)} or cls")
        self.encoder = encoder
        self.num_labels = num_labels
        self.pooling = pooling
        self.dropout = torch.nn.Dropout(dropout)
        width = encoder.config.hidden_size * (2 if pooling == "markers" else 1)
        self.classifier = torch.nn.Linear(width, num_labels)

    @classmethod
    def from_encoder(cls, path: Path, num_labels: int, pooling: str) -> PooledClassifier:
        return cls(AutoModel.from_pretrained(path), num_labels, pooling)

    @classmethod
    def from_saved(cls, path: Path, num_labels: int, pooling: str) -> PooledClassifier:
        from safetensors.torch import load_file

        model = cls(AutoModel.from_pretrained(path), num_labels, pooling)
        model.classifier.load_state_dict(load_file(str(Path(path) / cls.HEAD_FILE)))
        return model

    def save_pretrained(self, path: Path) -> None:
        from safetensors.torch import save_file

        self.encoder.save_pretrained(path)
        save_file({k: v.contiguous() for k, v in self.classifier.state_dict().items()}, str(Path(path) / self.HEAD_FILE))

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, markers=None):
        from transformers.modeling_outputs import SequenceClassifierOutput

        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        if self.pooling == "markers":
            rows = torch.arange(hidden.shape[0])
            pooled = torch.cat([hidden[rows, markers[:, 0]], hidden[rows, markers[:, 1]]], dim=-1)
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))


class CalibratedClassifier:
    """A fine-tuned sequence classifier saved by `annopipe.training.classifier.save_classifier`.

    Probabilities are `softmax((logits + bias) / temperature)`: the bias undoes the prior shift
    of subsampled training negatives, the temperature was fitted on development logits, so the
    scores are calibrated probabilities (as far as the development set tells).
    """

    def __init__(self, model_dir: Path, batch_size: int = 32):
        from transformers import AutoModelForSequenceClassification

        model_dir = Path(model_dir)
        card = model_dir / MODEL_CARD
        if not card.exists():
            raise AnnopipeError(f"{model_dir}: no {MODEL_CARD}; not a classifier saved by annopipe training")
        self.meta = json.loads(card.read_text(encoding="utf-8"))
        self.labels: list[str] = list(self.meta["labels"])
        self.temperature = float(self.meta.get("temperature", 1.0))
        self.max_length = int(self.meta.get("max_length", 128))
        bias = self.meta.get("logit_bias") or {}
        self.bias = torch.tensor([float(bias.get(label, 0.0)) for label in self.labels])
        self.batch_size = batch_size
        self.pooling = self.meta.get("pooling", "cls")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if self.pooling in PooledClassifier.POOLINGS:
            self.model = PooledClassifier.from_saved(model_dir, len(self.labels), self.pooling).eval()
        else:
            self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        self.version = "trained." + model_fingerprint(model_dir)

    def logits(self, texts: list[str], markers: list[tuple[int, int]] | None = None) -> torch.Tensor:
        if self.pooling != "markers":
            markers = None
        elif markers is None:
            raise AnnopipeError("this classifier pools at entity markers: pass their positions with the texts")
        return sequence_logits(self.model, self.tokenizer, texts, self.max_length, self.batch_size, markers)

    def probabilities(self, texts: list[str], markers: list[tuple[int, int]] | None = None) -> torch.Tensor:
        if not texts:
            return torch.empty(0, len(self.labels))
        return torch.softmax((self.logits(texts, markers) + self.bias) / self.temperature, dim=-1)


class TrainedParagraphClassifier:
    """Paragraph labels from a fine-tuned MiniLM (`annopipe.training.paragraphs`); scores are calibrated."""

    def __init__(self, model_dir: Path, batch_size: int = 16):
        self.classifier = CalibratedClassifier(model_dir, batch_size)
        self.labels = self.classifier.labels
        self.version = self.classifier.version

    def __call__(self, texts: list[str]) -> list[ParagraphLabel]:
        probs = self.classifier.probabilities(texts)
        best = probs.argmax(dim=-1)
        return [ParagraphLabel(self.labels[int(i)], round(float(probs[row, i]), 4)) for row, i in enumerate(best)]
