# Two commands do all set-up on a fresh machine:
#   make demo   create or reuse .venv, install motionprep (CPU torch 2.13.0), run the workflow on the demo dataset
#   make test   same set-up, then the test suite
# On a GPU machine install a CUDA torch first, e.g.
#   make install TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
CORES ?= all
STAMP := $(VENV)/.motionprep-installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo test bench clean-results

$(STAMP): setup.cfg setup.py pyproject.toml pipeline/compressed/_kernels.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# second motion-vector backend; --no-deps: its opencv-python dependency would replace the contrib build
	$(BIN)/python -m pip install --quiet --no-deps 'motion-vector-extractor>=1.1,<3'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/snakemake --cores $(CORES) all && \
	echo "motionprep demo finished in $$(( $$(date +%s) - start )) s" && \
	echo "results: $(CURDIR)/results (shards: results/<stage>/demo/shard-*.h5; logs: logs/)" && \
	echo "look inside: $(BIN)/prep-cli shards inspect results/decode/demo/shard-00000.h5"

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_decode.py

clean-results:
	rm -rf results logs manifests/*.tsv .snakemake
