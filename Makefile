# The two commands of the course (see README.md):
#   make book   set up .venv if missing, install, run the stale labs and build the book
#   make test   set up .venv if missing, install, run the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= laptop

# On the course's offline machines the data sits in ../shared/data; elsewhere the labs download
# it into data/ (through $DLCOURSE_MIRROR first, then torchvision's mirrors; see README.md).
# An explicit DLCOURSE_DATA always wins.
ifneq ($(wildcard ../shared/data/FashionMNIST),)
export DLCOURSE_DATA ?= $(abspath ../shared/data)
endif

.PHONY: install book test clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	touch $@

install: $(VENV)/.installed

book: install
	$(VENV)/bin/dlcourse book --profile $(PROFILE)

test: install
	$(PY) -m pytest

clean:
	rm -rf _build book/labs .pytest_cache
