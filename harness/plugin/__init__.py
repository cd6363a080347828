"""The pytest plugin: hooks, options, parametrization, selection, fixtures and the session's end."""
