# The two commands the README gives. Both create (or reuse) .venv and install
# what they need; nothing else has to be on the machine but Python 3.10-3.12.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.edgekit-installed

.PHONY: run test test-slow test-headline bench clean

# PYTHONWARNINGS: setuptools announces every editable install of a package
# assembled from folders ("Editable installation ... folders with the same name
# as your package"): information about the install mode, not a problem.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## make run: the whole job on the bundled MNIST (RUN=runs/mnist by default)
RUN ?= runs/mnist
run: $(STAMP)
	$(VENV)/bin/edgekit run --run $(RUN) $(ARGS)

## make test: the fast suite plus the few slow "headline" tests that prove
## the numbers the README states (what CI runs). It includes the Swift
## package in apps/ios (tests/ios/test_swift_package.py: swift build + swift
## test, cached in apps/ios/.build) when `swift` is on PATH; without it,
## pytest's summary says in one line that the Swift tests were NOT run
## (.ci/run sets EDGEKIT_REQUIRE_SWIFT=1, which makes that a failure).
test: $(STAMP)
	$(PY) -m pytest -m "not slow or headline" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
