# Two entry points (see README): `make run` sets up and runs the pipeline, `make test` sets up
# and runs the checks. Both work on a fresh machine; setup steps are skipped once done.
VENV := .venv
PYTHON := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup dataset compiler run test lint clean

setup: $(VENV)/.installed dataset compiler

# The package and its pinned dependencies (torch 2.14.1, torchvision 0.29.1, onnxruntime, mkl,
# dvc, ...).
$(VENV)/.installed: pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Debian's Fashion-MNIST package makes the default dataset available offline. Installed where
# apt-get exists and we are root; elsewhere the download stage falls back to the mirrors.
dataset:
	@if [ ! -d $(FASHION_MNIST) ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	fi

# A C compiler builds the benchmark's sparse kernel on first use (prunekit/kernels.c); without
# one that plan is skipped. Installed like the dataset, where apt-get exists and we are root.
compiler:
	@if ! command -v cc >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq gcc libc6-dev; \
	fi

run: setup
	dvc repro

lint: setup
	ruff check .

test: lint
	pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
