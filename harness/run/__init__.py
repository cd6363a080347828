"""run/ -- one run's life and what it leaves: in this process or a supervised child, rounds, timeouts, contention,
verdicts, the results store, the environment, and the measurement drivers. Never imports report/ or plugin/."""
