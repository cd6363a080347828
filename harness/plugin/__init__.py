"""The pytest plugin: hooks (the `pytest11` entry point), options, parametrization, selection, fixtures and
the session's end, each hook thin over run/, analysis/ and report/."""
