# The two commands of the README:
#   make demo   - set up .venv if needed, then run every registered claim check (quick scale)
#   make test   - set up .venv if needed, then run the test suite
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/logitrank check

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_isan_logits.py
	$(VENV)/bin/python benchmarks/bench_logit_matrix.py

clean:
	rm -rf $(VENV) results build *.egg-info
