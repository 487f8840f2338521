# secroom: `make demo` and `make test` are the two commands; both set themselves up.
# `make soak` is the release soak (10 minutes, every fault; `make test` runs a short one).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.secroom-installed
PYTEST_ARGS ?=
# the suite spends much of its time waiting on the services it starts (brokers, pcscd, cupsd,
# PostgreSQL, Chromium): one worker per core, at most 4 (each starts its own services)
PYTEST_WORKERS ?= -n auto --maxprocesses 4 --durations 25
SOAK_ARGS ?= --minutes 10

PAM_HELPER := build/secroom-pam-card

.PHONY: demo test soak bench lint deps venv clean documents

demo: export SECROOM_DEPS=demo
demo: venv
	$(VENV)/bin/secroom demo

test: venv
	$(VENV)/bin/ruff check controller readers usb_guard backup dashboard tests
	$(PY) -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

soak: venv
	$(PY) tests/bench/soak.py $(SOAK_ARGS)

bench: venv
	@set -e; for b in tests/bench/*.py; do \
	  case "$$(basename $$b)" in __init__.py|test_*|conftest.py|_*) continue;; esac; \
	  echo "== $$b"; $(PY) $$b $(BENCH_ARGS); done

documents: venv  # the demo's report and certificate, page 1 as PNG (README pictures)
	$(PY) -m dashboard.demo.render_documents hardware/screenshots

lint: venv
	$(VENV)/bin/ruff check controller readers usb_guard backup dashboard tests

deps:
	@bash hardware/install-deps.sh

venv: deps $(STAMP) $(PAM_HELPER)

# the host agent's PAM helper (C; install it as /usr/lib/secroom/secroom-pam-card)
$(PAM_HELPER): hardware/host-agent/pam/secroom-pam-card.c hardware/host-agent/build-pam-helper.sh
	@bash hardware/host-agent/build-pam-helper.sh $@

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "secroom needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,postgres,print,host]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .demo $(PAM_HELPER)
