# The toolkit's entry points. `make prepare` runs steps 1-6 on the shipped data; `make test` is the
# test command CI runs (.ci/run calls it).

CARGO_TARGET_DIR ?= $(HOME)/.cache/mlops-target
export CARGO_TARGET_DIR
CONFIG ?= configs/data.yaml
TRAINING ?= configs/training.yaml
MLOPS := $(CARGO_TARGET_DIR)/debug/mlops
MLOPS_RELEASE := $(CARGO_TARGET_DIR)/release/mlops

.PHONY: help setup test-deps build release prepare eda train test lint fmt bench clean-data

help:
	@echo "make prepare   build mlops and run steps 1-6 on the shipped data ($(CONFIG))"
	@echo "make eda       prepare, then profile the dataset into an HTML report with charts ($(TRAINING))"
	@echo "make train     prepare, then tune the candidates of configs/training.yaml and print the leaderboard"
	@echo "make test      unit, property and end-to-end tests"
	@echo "make lint      rustfmt and clippy (warnings are errors)"
	@echo "make release   optimized build: $(MLOPS_RELEASE)"
	@echo "make bench     toolkit vs pandas and scikit-learn on generated and real data (release build, Python 3)"

setup:
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs"; exit 1; }
	@command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked

# The end-to-end tests compare the toolkit's output with a pandas reference.
test-deps:
	@python3 -c 'import pandas, pyarrow' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pandas pyarrow

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

test: setup test-deps
	cargo build --bin mlops
	cargo nextest run --workspace --no-fail-fast
	cargo test --workspace --doc

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

bench: release
	bench/run.sh
	bench/explore.sh
	bench/models.sh

clean-data:
	rm -rf data/interim data/processed logs reports
