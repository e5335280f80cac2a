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
    layers = sorted(model_dir.glob(PooledClassifier.LAYER_FILE.format("*")))
    for path in [model_dir / name for name in (MODEL_CARD, "model.safetensors", "pytorch_model.bin")] + layers + [
            model_dir / PooledClassifier.HEAD_FILE]:
        if path.exists():
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:12]


def marker_positions(encoding, markers: list[tuple[int, int]], texts: list[int] | None = None) -> list[list[int]]:
    """Token indices of the two markers' first characters (0, the [CLS] token, where truncated away);
    `texts` gives the encoded text each pair of markers is in (the pair's own text when None)."""
    positions = []
    for row, chars in enumerate(markers):
        text = row if texts is None else texts[row]
        found = [encoding.char_to_token(text, char) for char in chars]
        positions.append([0 if token is None else token for token in found])
    return positions


def group_rows(texts: list[str]) -> tuple[list[str], list[list[int]]]:
    """The distinct texts, and for each the rows that show it: every pair of one paragraph is
    classified from a single encoding of the paragraph."""
    index: dict[str, int] = {}
    rows: list[list[int]] = []
    for row, text in enumerate(texts):
        at = index.setdefault(text, len(index))
        if at == len(rows):
            rows.append([])
        rows[at].append(row)
    return list(index), rows


def sequence_logits(
    model, tokenizer, texts: list[str], max_length: int, batch_size: int = 32,
    markers: list[tuple[int, int]] | None = None,
) -> torch.Tensor:
    """Raw logits of a classifier, one row per text (and marker pair), in input order; no gradients.

    Each distinct text is encoded once, in batches of similar length; `markers` (the character
    positions of two entity markers per row) are passed on to a `PooledClassifier` that pools
    there, so the rows that share a text (the pairs of one paragraph) share its encoding.
    """
    logits = torch.empty(len(texts), model.num_labels)
    distinct, rows_of = group_rows(texts)
    order = sorted(range(len(distinct)), key=lambda i: len(distinct[i]))
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for at in range(0, len(order), batch_size):
            chunk = order[at : at + batch_size]
            batch = tokenizer(
                [distinct[i] for i in chunk], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            rows = [row for i in chunk for row in rows_of[i]]
            position = [p for p, i in enumerate(chunk) for _ in rows_of[i]]
            inputs = dict(batch)
            if markers is not None:
                inputs["markers"] = torch.tensor(marker_positions(batch, [markers[r] for r in rows], position))
                inputs["rows"] = torch.tensor(position)
                logits[rows] = model(**inputs).logits.float()
            else:
                logits[rows] = model(**inputs).logits.float()[torch.tensor(position)]
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

    With `frozen_layers` > 0 the embeddings and that many bottom layers stay as the installed
    encoder ships them: `lower` runs them without gradients, and `forward` takes their states
    (`lower_states`) to run only the trained top layers and the head. Training can then compute the
    lower states once instead of every epoch, and a saved model is only its top layers (one float16
    file per layer, 3.5 MB for MiniLM) and head over the encoder package, which is what makes
    trained versions small enough to commit. With 0 the whole encoder is trained and saved
    (`save_pretrained`).
    """

    HEAD_FILE = "pooled_head.safetensors"
    LAYER_FILE = "encoder_layer_{}.safetensors"
    POOLINGS = ("markers", "pair_context", "mean")
    PAIR_POOLINGS = ("markers", "pair_context")

    def __init__(self, encoder, num_labels: int, pooling: str, dropout: float = 0.1, frozen_layers: int = 0):
        super().__init__()
        if pooling not in self.POOLINGS:
            raise AnnopipeError(f"unknown pooling {pooling!r}; use one of {', '.join(self.POOLINGS)} or cls")
        depth = encoder.config.num_hidden_layers
        if not 0 <= frozen_layers < depth:
            raise AnnopipeError(f"frozen_layers must be between 0 and {depth - 1} for this {depth}-layer encoder")
        self.encoder = encoder
        self.num_labels = num_labels
        self.pooling = pooling
        self.frozen_layers = frozen_layers
        self.dropout = torch.nn.Dropout(dropout)
        width = encoder.config.hidden_size * {"markers": 2, "pair_context": 3}.get(pooling, 1)
        self.classifier = torch.nn.Linear(width, num_labels)
        for parameter in self._frozen_parameters():
            parameter.requires_grad_(False)

    def _frozen_parameters(self):
        if not self.frozen_layers:
            return
        yield from self.encoder.embeddings.parameters()
        if self.encoder.pooler is not None:  # never used: classification pools the last states itself
            yield from self.encoder.pooler.parameters()
        for layer in self.encoder.encoder.layer[: self.frozen_layers]:
            yield from layer.parameters()

    def _top_layers(self):
        layers = self.encoder.encoder.layer
        return [(i, layers[i]) for i in range(self.frozen_layers, len(layers))]

    def train(self, mode: bool = True) -> PooledClassifier:
        super().train(mode)
        if self.frozen_layers:  # the shipped layers run as shipped: no dropout
            self.encoder.embeddings.eval()
            for layer in self.encoder.encoder.layer[: self.frozen_layers]:
                layer.eval()
        return self

    @classmethod
    def from_encoder(cls, path: Path, num_labels: int, pooling: str, frozen_layers: int = 0) -> PooledClassifier:
        return cls(AutoModel.from_pretrained(path), num_labels, pooling, frozen_layers=frozen_layers)

    @classmethod
    def from_saved(cls, path: Path, num_labels: int, pooling: str, frozen_layers: int = 0,
                   encoder_dir: Path | None = None) -> PooledClassifier:
        from safetensors.torch import load_file

        path = Path(path)
        base = AutoModel.from_pretrained(encoder_dir if frozen_layers else path)
        model = cls(base, num_labels, pooling, frozen_layers=frozen_layers)
        for i, layer in model._top_layers() if frozen_layers else ():
            saved = path / cls.LAYER_FILE.format(i)
            if not saved.exists():
                raise AnnopipeError(f"{path}: no {saved.name}, the trained layer {i}; train again")
            layer.load_state_dict({name: tensor.float() for name, tensor in load_file(str(saved)).items()})
        model.classifier.load_state_dict(load_file(str(path / cls.HEAD_FILE)))
        return model

    def round_top_to_half(self) -> None:
        """Round the trained top layers to float16 precision: what `save_pretrained` keeps of them."""
        with torch.no_grad():
            for _, layer in self._top_layers():
                for tensor in layer.state_dict().values():
                    tensor.copy_(tensor.half().float())

    def save_pretrained(self, path: Path) -> None:
        from safetensors.torch import save_file

        Path(path).mkdir(parents=True, exist_ok=True)
        if self.frozen_layers:
            for i, layer in self._top_layers():
                save_file({name: tensor.half().contiguous() for name, tensor in layer.state_dict().items()},
                          str(Path(path) / self.LAYER_FILE.format(i)))
        else:
            self.encoder.save_pretrained(path)
        save_file({k: v.contiguous() for k, v in self.classifier.state_dict().items()}, str(Path(path) / self.HEAD_FILE))

    def _mask(self, attention_mask: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        mask, _ = self.encoder._create_attention_masks(
            attention_mask=attention_mask, encoder_attention_mask=None, embedding_output=hidden,
            encoder_hidden_states=None, past_key_values=None,
        )
        return mask

    def _layers(self, hidden: torch.Tensor, mask: torch.Tensor, layers) -> torch.Tensor:
        for layer in layers:
            hidden = layer(hidden, attention_mask=mask)
            if isinstance(hidden, tuple):
                hidden = hidden[0]
        return hidden

    def lower(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """Hidden states after the frozen layers (no gradients)."""
        with torch.no_grad():
            hidden = self.encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            return self._layers(hidden, self._mask(attention_mask, hidden),
                                self.encoder.encoder.layer[: self.frozen_layers])

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, markers=None, lower_states=None,
                rows=None):
        """Logits; `lower_states` (from `lower`, padded like `attention_mask`) skip the frozen layers.
        With `rows`, `markers` holds one pair per row and `rows` the text of the batch it is in:
        one encoded paragraph serves all its candidate pairs."""
        from transformers.modeling_outputs import SequenceClassifierOutput

        if self.frozen_layers:
            if lower_states is None:
                lower_states = self.lower(input_ids, attention_mask, token_type_ids)
            hidden = self._layers(lower_states, self._mask(attention_mask, lower_states),
                                  self.encoder.encoder.layer[self.frozen_layers :])
        else:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
        if self.pooling in self.PAIR_POOLINGS:
            rows = torch.arange(hidden.shape[0]) if rows is None else rows
            parts = [hidden[rows, markers[:, 0]], hidden[rows, markers[:, 1]]]
            if self.pooling == "pair_context":  # and the mean of the tokens from the first marker to the second
                first, second = markers.min(dim=1).values, markers.max(dim=1).values
                running = hidden.cumsum(dim=1)
                between = running[rows, second] - running[rows, first]
                parts.append(between / (second - first).clamp(min=1).unsqueeze(-1).to(hidden.dtype))
            pooled = torch.cat(parts, dim=-1)
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
        frozen = int(self.meta.get("frozen_layers", 0))
        encoder_dir = self._base_encoder(model_dir) if frozen else model_dir
        self.tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
        if self.pooling in PooledClassifier.POOLINGS:
            self.model = PooledClassifier.from_saved(model_dir, len(self.labels), self.pooling, frozen,
                                                     encoder_dir).eval()
        else:
            self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        self.version = "trained." + model_fingerprint(model_dir)

    def _base_encoder(self, model_dir: Path) -> Path:
        """The installed encoder whose bottom layers a compact classifier runs on: the very version it
        was trained over, since its top layers only fit those."""
        name, trained_on = self.meta.get("encoder"), self.meta.get("encoder_version")
        if not name:
            raise AnnopipeError(f"{model_dir}: {MODEL_CARD} names no encoder for its frozen layers; retrain")
        installed = encoder_version(name)
        if trained_on and installed != trained_on:
            raise AnnopipeError(f"{model_dir} was trained over {trained_on} but {installed} is installed; "
                                "install that encoder version or train again")
        return encoder_path(name)

    def logits(self, texts: list[str], markers: list[tuple[int, int]] | None = None) -> torch.Tensor:
        if self.pooling not in PooledClassifier.PAIR_POOLINGS:
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
