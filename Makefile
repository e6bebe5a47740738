# Two entry points, each self-installing and idempotent:
#   make demo   - set up and run the main job (active learning on the embedded GFN1-xTB reference)
#   make test   - set up and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mofsnap-installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test benchmarks

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	# PLUMED kernel for metadynamics; its declared dependencies are not needed
	$(PY) -m pip install -q --no-deps hillclimber
	touch $@

/usr/bin/cp2k.psmp:
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cp2k

demo: $(STAMP)
	$(VENV)/bin/mofsnap learn --demo -o results/demo

test: $(STAMP) /usr/bin/cp2k.psmp
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests

benchmarks: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m benchmarks
