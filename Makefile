# The two set-up commands of the README: `make run` and `make test`. Everything installs here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := data/demo.jsonl
OUT    := out

.PHONY: run test services clean

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

# Tools the tests use: Prometheus + promtool and docker-compose (only `config`, to validate
# deploy/compose.yaml) from Debian; Java + Maven (the Kafka broker's jars come from Maven Central
# into ~/.cache/skewstream).
services:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v docker-compose >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus docker-compose; }
	@command -v java >/dev/null && command -v mvn >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless maven; }

# The whole suite (unit tests offline; integration tests start a real Kafka and Prometheus).
test: $(VENV)/.test services
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(OUT) data
