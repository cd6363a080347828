"""analysis/ -- pure functions over records and measured values: comparisons and noise tests, thresholds,
baseline choice, the CI gate, per-instance summaries, history and series measures, quality and breakdown
maths, recommendations. No I/O, no formatting; imports only harness.records (and the engine's pure types)."""
