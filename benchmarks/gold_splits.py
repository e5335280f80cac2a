"""Trained models over several document splits of the gold set: mean ± std of every figure the
stance issue sets a target for, beside model zero and the annotators' agreement where known.

For each split seed S the gold (corpora/gold by default) is split by document as `annopipe train
--seed S` splits it; NER, relations and paragraph labels are trained on the train split into a
throw-away registry (dev decides early stopping, the rules-beside-or-not choice and the push
threshold), then the test split is tagged end to end by model zero and by the trained versions
(spans predicted, relations over the predicted spans) and scored, and the relation models are
scored from the gold spans too. Train time and peak RSS of each task's run are printed.

    .venv/bin/python benchmarks/gold_splits.py [--seeds 0 1 2] [--gold corpora/gold] [--max-epochs 30]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from annopipe.config import load_config
from annopipe.evaluation import evaluate
from annopipe.gold import read_gold
from annopipe.nlp.pipeline import Predictor
from annopipe.registry import Registry
from annopipe.training import runs
from annopipe.training.data import build

TASKS = ("ner", "relations", "paragraphs")


def tagged(config, active: dict, records: list) -> dict:
    predictor = Predictor(config, active)
    return {r.paragraph_id: r for r in predictor([r.paragraph() for r in records])}


def figures_of(scores: dict) -> dict[str, float]:
    spans, relations, labels = scores["spans"], scores["relations"], scores["paragraph_labels"]
    out = {"span F1": spans["micro"]["f1"], "TOPIC F1": spans["per_label"].get("TOPIC", {}).get("f1", 0.0),
           "relation F1": relations["micro"]["f1"], "relation P": relations["micro"]["precision"],
           "relation R": relations["micro"]["recall"], "paragraph macro-F1": labels["macro_f1"]}
    for label, values in sorted(relations["per_label"].items()):
        out[f"  {label}"] = values["f1"]
    return out


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--gold", type=Path, default=Path("corpora/gold"))
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--output", type=Path, help="write every split's figures here as JSON")
    parser.add_argument("--keep", type=Path, help="keep each split's registry as KEEP/seed-S (else a temporary one)")
    args = parser.parse_args()
    base = load_config(Path("configs/annopipe.yaml"))
    gold = read_gold(args.gold, base)
    symmetric = base.relations.symmetric
    table: dict[str, dict[str, list[float]]] = {}
    runs_log = []
    for seed in args.seeds:
        data = build(gold, seed)
        with tempfile.TemporaryDirectory() as scratch:
            config = replace(base, registry=args.keep / f"seed-{seed}" if args.keep else Path(scratch))
            registry = Registry(config.registry)
            trained, seconds = {}, {}
            for task in TASKS:
                started = time.perf_counter()
                outcome = runs.train(task, data, config, registry, seed=seed, margin=-1.0, max_epochs=args.max_epochs)
                seconds[task] = round(time.perf_counter() - started, 1)
                trained[task] = registry.get(task, outcome.version)
                print(f"seed {seed}: {task} trained in {seconds[task]:.0f} s "
                      f"(dev {outcome.metric} {outcome.candidate:.3f}, model zero {outcome.current:.3f})", flush=True)
            test = data.splits["test"]
            zero = figures_of(evaluate(test, tagged(config, dict.fromkeys(TASKS), test), symmetric))
            after = figures_of(evaluate(test, tagged(config, trained, test), symmetric))
            from_gold = trained["relations"].metrics["test"]
            rows = {f"test {k} (model zero)": v for k, v in zero.items()}
            rows |= {f"test {k} (trained)": v for k, v in after.items()}
            rows["test relation F1 from gold spans (trained)"] = from_gold["micro"]["f1"]
            for label, values in sorted(from_gold["per_label"].items()):
                rows[f"test   {label} from gold spans (trained)"] = values["f1"]
            rows |= {f"train seconds {task}": s for task, s in seconds.items()}
            for name, value in rows.items():
                table.setdefault(name, {}).setdefault("values", []).append(value)
            runs_log.append({"seed": seed, "data_hash": data.hash, "counts": {
                split: len(records) for split, records in data.splits.items()}, "figures": rows})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{len(gold)} gold paragraphs; split seeds {args.seeds}; mean ± std over the splits")
    for name, entry in table.items():
        print(f"{name:<52} {mean_std(entry['values'])}   {' '.join(f'{v:.3f}' for v in entry['values'])}")
    print(f"peak RSS of this process {peak:.0f} MiB")
    if args.output:
        args.output.write_text(json.dumps(runs_log, indent=2) + "\n")


if __name__ == "__main__":
    main()
