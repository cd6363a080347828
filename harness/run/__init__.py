"""run/ -- one run's life and what it leaves: a request run in this process or in a supervised child, rounds,
timeouts, CPU contention, budgets and verdicts, the append-only results store, the environment (git, machine),
and the measurement drivers of the breakdown and efficiency benches. Imports analysis/ and records, never
report/ or plugin/."""
