# Two commands a new user needs: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,judge,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/prefcap demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench experiments tools

# pytest exits 5 when it collected no test: treat that as a failure, not a silent green.
test: lint
	$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

# The RL, reward and embedding benchmarks read a finished demo: build runs/demo first when it is missing.
DEMO_RESULTS := runs/demo/results.json
$(DEMO_RESULTS): | $(STAMP)
	@echo "make bench: the RL, reward and embedding benchmarks read a finished demo; building runs/demo first (about 15 min on 2 cores)"
	$(BIN)/prefcap demo --out runs/demo

# Speed and memory figures; never part of `make test`.
bench: $(STAMP) $(DEMO_RESULTS)
	$(BIN)/python bench/bench_synth.py
	$(BIN)/python bench/bench_cache.py
	$(BIN)/python bench/bench_annotate_load.py
	$(BIN)/python bench/bench_rl.py
	$(BIN)/python bench/bench_reward.py
	$(BIN)/python bench/bench_store_scale.py
	$(BIN)/python bench/bench_real_sizes.py
	$(BIN)/python bench/bench_embed_memory.py
	$(BIN)/python bench/table.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
