# The two set-up commands of the README: `make run` and `make test`. Everything installs here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := data/demo.jsonl
OUT    := out

.PHONY: run test clean

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Replay the bundled demo stream (generated on first run) through the whole pipeline.
run: $(VENV)/.runtime
	$(BIN)/skewstream synth $(DEMO) --if-absent
	$(BIN)/skewstream replay $(DEMO) --out $(OUT)/scores.jsonl --checkpoint-dir $(OUT)/checkpoints

# The whole suite (unit tests offline; integration tests start their own services).
test: $(VENV)/.test
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(OUT) data
