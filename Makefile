# Every target installs what it needs first (scripts/setup.sh is idempotent and fast when up to date).
PY      := .venv/bin/python
PYTEST  := .venv/bin/pytest
CORPUS  ?= ../shared/data/pubmedqa/ori_pqal.json
QUESTION ?= Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?
ARGS    ?=

.PHONY: setup bench test bench-quick bench-balanced bench-thorough bench-all quality breakdown efficiency micro report export \
        gate-calibration \
        system profiles run calibrate monitor-memory telemetry test-ollama clean-cache \
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
bench-all: setup
	$(PYTEST) benches $(ARGS)
efficiency: setup
	$(PYTEST) benches -m efficiency $(ARGS)
quality: setup
	$(PYTEST) benches -m "quick and quality" $(ARGS)
breakdown: setup
	$(PYTEST) benches -m breakdown $(ARGS)
micro: setup
	$(PYTEST) benches -m micro $(ARGS)
## The compare gate's false-alarm and detection rates from real interleaved A/A and A/B sessions (1-2 hours).
gate-calibration: setup
	$(PYTEST) benches -m calibration $(ARGS)
report: setup
	$(PY) -m harness report --out report.html
export: setup
	$(PY) -m harness export --format bencher --out bencher.json
	$(PY) -m harness export --format github-action-benchmark --out gab.json
	$(PY) -m harness export --format github-action-benchmark --direction bigger --out gab-bigger.json
system: setup
	$(PY) -m engine system
profiles: setup
	$(PY) -m engine profiles
run: setup
	$(PY) -m engine run "$(QUESTION)" --profile quick --corpus $(CORPUS) --telemetry-out t.json
## One research run with live memory: the sampler's peak and trace are in the telemetry it writes.
monitor-memory: setup
	$(PY) -m engine run "$(QUESTION)" --profile quick --corpus $(CORPUS) --telemetry-out t.json --memory-trace
telemetry: run
	$(PY) -m engine validate t.json
test-ollama: setup
	$(PYTEST) tests -k ollama $(ARGS)
calibrate: setup
	$(PY) -m engine calibrate --profile quick --runs 5 --corpus $(CORPUS)
clean-cache:
	rm -rf $${XDG_CACHE_HOME:-$$HOME/.cache}/llm-research-bench

# The seed's names, kept as aliases.
bench-m1: bench-all
bench-m1-quick: bench-quick
bench-m1-thorough: bench-thorough
validate-m1-system: system
monitor-m1-memory: monitor-memory
m1-telemetry: telemetry
