"""llm-research-bench: a streaming local-LLM research engine and the pytest plugin that benchmarks it.

The distribution installs one import package, `llm_research_bench`, whose subpackages are the repository's
top-level folders (see pyproject.toml, [tool.setuptools.package-dir]):

    llm_research_bench.engine    <- engine/    the research pipeline (`research(...)`)
    llm_research_bench.harness   <- harness/   the pytest plugin and the results tools
    schemas/                      JSON Schemas, installed as package data beside them

The distinct name keeps a project's own top-level `engine` or `harness` package unshadowed: nothing here is
importable as plain `engine` or `harness` once installed. In a checkout, `python -m engine` and
`python -m harness` still work: their `__main__` modules hand over to the installed names.
"""


def __getattr__(name: str):
    """__version__, from the installed distribution's metadata, looked up on first use (cheap imports: the
    pytest plugin's entry point imports this package in every pytest run)."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version
        try:
            v = version("llm-research-bench")
        except PackageNotFoundError:   # pragma: no cover -- a checkout that was never installed
            v = "0.1.0+checkout"
        globals()["__version__"] = v
        return v
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
