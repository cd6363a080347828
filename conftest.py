# Root conftest: makes pytester available to the plugin's own tests. The research-bench plugin itself is
# registered through the `pytest11` entry point in pyproject.toml (harness.plugin).
pytest_plugins = ["pytester"]
