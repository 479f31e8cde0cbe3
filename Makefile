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

demo: install  ## main job: build the embedded synthetic corpus and train manifests/demo.toml on CPU
	$(PY) -m trainer.run manifests/demo.toml

test: install  ## the test suite (tests that need ../shared/data skip with a reason when it is absent)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) data runs
