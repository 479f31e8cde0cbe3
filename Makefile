# The two set-up commands of the README. Each creates .venv on first use (CPU torch pinned by
# constraints/cpu.txt; a GPU user installs their own torch first and runs `pip install -e .[dev,gpu]`).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test install bench clean

$(VENV)/.installed: pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints/cpu.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# torch threads of the demo's process: one by default, so the demo beside other jobs on a small shared
# CPU does not oversubscribe it (a step took twice as long with torch on all cores of a busy 2-core
# machine); `make demo DEMO_THREADS=4` on an idle machine with cores to spare
DEMO_THREADS ?= 1

demo: install  ## main job: build the embedded synthetic corpus and train manifests/demo.toml on CPU
	OMP_NUM_THREADS=$(DEMO_THREADS) MKL_NUM_THREADS=$(DEMO_THREADS) $(PY) -m trainer.run manifests/demo.toml

test: install  ## the test suite (tests that need ../shared/data skip with a reason when it is absent)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) data runs
