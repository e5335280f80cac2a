"""CrossRE politics: relation micro- and macro-F1 on dev after training annopipe's pair classifier on its 101 training sentences.

Setting: CrossRE's own. Entities are given, and so is which ordered pairs of them are related;
the classifier only chooses the labels (`train_relation_model(pairs="related")`, MiniLM with
typed entity markers, pooled at the markers; a pair with several gold labels is trained once per
label, and takes every label whose probability reaches a threshold chosen on dev). Scoring: `annopipe.public_data.relation_scores`,
exact (head, tail, label) match; macro is the mean over labels with gold support, as CrossRE's
released evaluate.py computes it. Early stopping watches dev micro-F1, so the dev figures are
tuned ones, like the baselines'. Test files are never read.

Baseline in the same run: each related pair gets the training set's most frequent label for
its (head type, tail type), else the most frequent label overall. The issue quotes two more,
measured elsewhere: a plain MiniLM-L6 entity-marker multi-label classifier, 26.3 macro / 57.9
micro on dev (~12 min CPU); the released bert-base-cased predictions, about 20 macro / 58 micro
on test.

    .venv/bin/python benchmarks/crossre_relations.py [--seed 0] [--epochs 10] [--predictions dev.jsonl]

`--predictions` writes the dev predictions as annopipe JSONL, which
`annopipe evaluate --dataset crossre --predictions FILE` scores again.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from annopipe.config import load_config
from annopipe.nlp.paragraphs import encoder_path
from annopipe.nlp.relations import TrainedRelationModel
from annopipe.public_data import CROSSRE_RELATION_LABELS, load_public, relation_scores
from annopipe.records import Record, Relation, write_jsonl
from annopipe.training.relations import train_relation_model


def type_pair_baseline(train: list[Record], dev: list[Record]) -> list[Record]:
    """Dev records whose related pairs carry the most frequent training label of their type pair."""
    def types(record: Record, rel: Relation) -> tuple[str, str]:
        labels = {s.key: s.label for s in record.spans}
        return labels[rel.head], labels[rel.tail]

    by_types: dict[tuple, Counter] = {}
    for record in train:
        for rel in record.relations:
            by_types.setdefault(types(record, rel), Counter())[rel.label] += 1
    overall = Counter(rel.label for record in train for rel in record.relations).most_common(1)[0][0]
    out = []
    for record in dev:
        pairs = dict.fromkeys((rel.head, rel.tail, types(record, rel)) for rel in record.relations)
        relations = [
            Relation(head, tail, by_types[kinds].most_common(1)[0][0] if kinds in by_types else overall)
            for head, tail, kinds in pairs
        ]
        out.append(replace(record, relations=relations))
    return out


def line(name: str, scores: dict) -> str:
    micro, macro = scores["micro"], scores["macro"]
    return (f"{name:<44} micro P {micro['precision']:.3f} R {micro['recall']:.3f} F1 {micro['f1']:.3f}   "
            f"macro F1 {macro['f1']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--predictions", type=Path, help="write the dev predictions here (annopipe JSONL)")
    parser.add_argument("--frozen-layers", type=int, default=3,
                        help="encoder layers kept as shipped (3 of MiniLM's 6, as `annopipe train relations`); 0 trains all")
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    args = parser.parse_args()
    train, dev = load_public("crossre", "train"), load_public("crossre", "dev")
    labels = list(CROSSRE_RELATION_LABELS)
    encoder = encoder_path(load_config().paragraphs.encoder)

    def scored(records: list[Record]) -> dict:
        return relation_scores(dev, {r.paragraph_id: r for r in records}, labels)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        figures = train_relation_model(
            train, dev, labels, [], None, encoder, Path(tmp) / "model", seed=args.seed, epochs=args.epochs,
            split_sentences=False, pairs="related", frozen_layers=args.frozen_layers, learning_rate=args.learning_rate,
            progress=lambda h: print(f"epoch {h['epoch']:2d}  train loss {h['train_loss']:.4f}  "
                                     f"dev micro-F1 {h['dev_score']:.4f}  {h['seconds']:.0f} s", flush=True),
        )
        train_seconds = time.perf_counter() - started
        model = TrainedRelationModel(Path(tmp) / "model", threshold=None)
        started = time.perf_counter()
        predicted = model.predict_records(dev)
        predict_seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.predictions:
        write_jsonl(predicted, args.predictions)

    gold_pairs = sum(len({(r.head, r.tail) for r in record.relations}) for record in dev)
    gold_relations = sum(len(record.relations) for record in dev)
    print(f"\nCrossRE politics: train {len(train)} sentences ({sum(len(r.relations) for r in train)} relations), "
          f"dev {len(dev)} sentences ({gold_relations} relations on {gold_pairs} pairs); seed {args.seed}")
    print(line("baseline: most frequent label of type pair", scored(type_pair_baseline(train, dev))))
    print(line("annopipe pair classifier (MiniLM, markers)", scored(predicted)))
    print(f"{gold_relations - gold_pairs} dev relations are a further label of a related pair; a pair takes a "
          f"further label at probability >= {figures['best_dev_threshold']} (1.0: never; chosen on dev)")
    print(f"training {train_seconds:.0f} s (best epoch {figures['best_epoch']}), predicting dev {predict_seconds:.0f} s, "
          f"peak RSS {peak:.0f} MiB")
    for label, s in scored(predicted)["per_label"].items():
        print(f"  {label:<15} P {s['precision']:.3f}  R {s['recall']:.3f}  F1 {s['f1']:.3f}  support {s['support']}")


if __name__ == "__main__":
    main()
