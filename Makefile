# Two commands do all set-up on a fresh clone (only Python 3.11 needed):
#   make demo   tag the sample corpus with the default models -> results/samples.jsonl
#   make test   run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install doccano browser demo test evaluate benchmark clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/annopipe tag corpora/samples -o results/samples.jsonl

# doccano lives in its own virtualenv (its pins clash with ours); the server tests start it from there.
doccano: $(STAMP)
	$(VENV)/bin/annopipe doccano install --venv .venv-doccano

# The browser tests drive doccano's web UI in Debian's chromium (Playwright never downloads a browser).
CHROMIUM ?= /usr/bin/chromium
browser:
	test -x $(CHROMIUM) || (export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq chromium || (apt-get update -qq && apt-get install -y -qq chromium))

test: $(STAMP) doccano browser
	$(VENV)/bin/python -m pytest

evaluate: $(STAMP)
	$(VENV)/bin/annopipe evaluate --gold corpora/gold -o results/metrics.json

benchmark: $(STAMP)
	$(VENV)/bin/python benchmarks/tag_throughput.py

clean:
	rm -rf $(VENV) .venv-doccano .annopipe results
