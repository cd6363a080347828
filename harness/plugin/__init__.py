"""plugin/ -- the pytest plugin itself: hooks (the `pytest11` entry point, hooks.py), options and ini keys,
parametrization over profiles, opt-in selection, fixtures, pytest-timeout's timer, and the session's end.
Thin: each hook hands over to run/, analysis/ and report/."""
