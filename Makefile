# Every target installs what it needs first (scripts/setup.sh is idempotent and fast when up to date).
PY      := .venv/bin/python
PYTEST  := .venv/bin/pytest
CORPUS  ?= ../shared/data/pubmedqa/ori_pqal.json
## Generated files (reports, exports, telemetry, memory traces) go here: git-ignored, never the repo root.
OUT     ?= out
QUESTION ?= Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?
ARGS    ?=

.PHONY: setup bench test bench-quick bench-balanced bench-thorough bench-all quality quality-open quality-claims memory-pressure breakdown efficiency micro report export list \
        gate-calibration \
        system profiles run calibrate calibrate-bench monitor-memory telemetry test-ollama clean-cache \
        bench-m1 bench-m1-quick bench-m1-thorough validate-m1-system monitor-m1-memory m1-telemetry

setup:
	@bash scripts/setup.sh

## The main job: the quick bench on the embedded default backend.
bench: setup
	$(PYTEST) benches -m quick $(ARGS)

## The tests (unit, plugin, end-to-end on the embedded model).
test: setup
	$(PYTEST) tests $(ARGS)

bench-quick: bench
bench-balanced: setup
	$(PYTEST) benches -m "balanced and not quality" $(ARGS)
bench-thorough: setup
	$(PYTEST) benches -m "thorough and not quality" $(ARGS)
## Every profile's pipeline bench and the micro benches. The opt-in benches (quality, breakdown, efficiency)
## are listed as "not selected (opt-in)" after collection; run them with `make quality breakdown efficiency`.
bench-all: setup
	@echo "bench-all: every profile's pipeline bench and the micro benches; opt-in benches: make quality breakdown efficiency"
	$(PYTEST) benches $(ARGS)
efficiency: setup
	$(PYTEST) benches -m efficiency $(ARGS)
quality: setup
	$(PYTEST) benches -m "quick and quality" -k "not open" $(ARGS)
## The open-question corpus only (benches/data/tooldocs, free-text gold answers).
quality-open: setup
	$(PYTEST) benches/test_quality.py -m "quick and quality" -k open $(ARGS)
## The claim-mode comparison: 30 questions a corpus, with the other claim mode and free claims (hours here).
quality-claims: setup
	RESEARCH_BENCH_QUALITY_CLAIM_ARMS=1 RESEARCH_BENCH_QUALITY_SAMPLE=30,10 $(PYTEST) benches/test_quality.py -m "quick and quality" $(ARGS)
## Adaptive batch sizing under real memory pressure (a memory-hog child process).
memory-pressure: setup
	$(PYTEST) benches -m memory_pressure $(ARGS)
breakdown: setup
	$(PYTEST) benches -m breakdown $(ARGS)
micro: setup
	$(PYTEST) benches -m micro $(ARGS)
## The compare gate's false-alarm and detection rates from real interleaved A/A and A/B sessions (1-2 hours).
gate-calibration: setup
	$(PYTEST) benches -m calibration $(ARGS)
report: setup
	$(PY) -m llm_research_bench.harness report --out $(OUT)/report.html
export: setup
	$(PY) -m llm_research_bench.harness export --format bencher --out $(OUT)/bencher.json
	$(PY) -m llm_research_bench.harness export --format github-action-benchmark --out $(OUT)/gab.json
	$(PY) -m llm_research_bench.harness export --format github-action-benchmark --direction bigger --out $(OUT)/gab-bigger.json
	$(PY) -m llm_research_bench.harness export --format csv --out $(OUT)/runs.csv
	$(PY) -m llm_research_bench.harness export --format jsonl --out $(OUT)/runs.jsonl
list: setup
	$(PY) -m llm_research_bench.harness list
system: setup
	$(PY) -m llm_research_bench.engine system
profiles: setup
	$(PY) -m llm_research_bench.engine profiles
run: setup
	$(PY) -m llm_research_bench.engine run "$(QUESTION)" --profile quick --corpus $(CORPUS) --telemetry-out $(OUT)/t.json
## One research run with its memory trace: process-tree RSS sampled at ~50 Hz, written as JSON.
monitor-memory: setup
	$(PY) -m llm_research_bench.engine run "$(QUESTION)" --profile quick --corpus $(CORPUS) \
	    --telemetry-out $(OUT)/t.json --memory-trace $(OUT)/memory-trace.json
telemetry: run
	$(PY) -m llm_research_bench.engine validate $(OUT)/t.json
test-ollama: setup
	$(PYTEST) tests -k ollama $(ARGS)
calibrate: setup
	$(PY) -m llm_research_bench.engine calibrate --profile quick --runs 5 --corpus $(CORPUS)
## A profile's band over the pipeline bench's pinned questions (5 runs each, on a quiet machine): prints the
## [profiles.$(PROFILE).budgets.<machine class>] lines for engine/profiles.toml (PROFILE=quick by default).
PROFILE ?= quick
calibrate-bench: setup
	$(PYTEST) benches/test_pipeline.py -m $(PROFILE) --research-rounds 5 --research-remeasure 0 --research-budget-scale 10 \
	    --research-json $(OUT)/calibrate.json $(ARGS)
	$(PY) scripts/pipeline_bands.py $(OUT)/calibrate.json
clean-cache:
	rm -rf $${XDG_CACHE_HOME:-$$HOME/.cache}/llm-research-bench

# The seed's names, kept as aliases.
bench-m1: bench-all
bench-m1-quick: bench-quick
bench-m1-thorough: bench-thorough
validate-m1-system: system
monitor-m1-memory: monitor-memory
m1-telemetry: telemetry
