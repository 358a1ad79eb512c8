# Two entry points: `make demo` runs the jobs end to end on local defaults,
# `make test` runs the whole test suite. Both set up .venv from scratch.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo automation test test-python check-terraform clean

$(STAMP): setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m localdev.demo

# Upload → Cloud Function → publish job → Kafka → extraction job, all on local stand-ins.
automation: $(STAMP)
	$(BIN)/python -m localdev.automation

test: test-python check-terraform

test-python: $(STAMP)
	$(BIN)/python -m pytest

# Parses every .tf file and runs checkov, each in a venv of its own.
check-terraform:
	bash tools/terraform_check.sh

clean:
	rm -rf $(VENV) .venv-terraform .pytest_cache
