"""`research-bench report`: the HTML report of the results store (report/html.py), commits in git's order, labelled
with git's dates and subjects and linked by --commit-url, $RESEARCH_BENCH_COMMIT_URL, the ini key
research_commit_url or the `origin` remote, in that order."""
from __future__ import annotations

import sys
from contextlib import suppress
from pathlib import Path

from .cli import UsageError, add_store_arguments, read_for_output


def ini_value(key: str) -> str | None:
    """`key` from the project's pytest ini options: pyproject.toml, then pytest.ini, tox.ini, setup.cfg."""
    import configparser
    import tomllib
    with suppress(OSError, tomllib.TOMLDecodeError):
        v = tomllib.loads(Path("pyproject.toml").read_text()).get("tool", {}).get("pytest", {}) \
            .get("ini_options", {}).get(key)
        if v:
            return str(v)
    cp = configparser.ConfigParser(interpolation=None)
    with suppress(configparser.Error):
        cp.read(["setup.cfg", "tox.ini", "pytest.ini"])   # the last read wins
        return next((cp.get(s, key).strip() for s in ("pytest", "tool:pytest") if cp.has_option(s, key)), "") or None
    return None


def add_arguments(p) -> None:
    p.add_argument("--out", default="report.html", help="HTML file to write (default: report.html)")
    add_store_arguments(p, "only this machine fingerprint (default: every machine)")
    p.add_argument("--title", default="LLM research bench report")
    p.add_argument("--commit-url", default=None, metavar="TEMPLATE",
                   help="link commits, e.g. https://github.com/ORG/REPO/commit/{commit} ({short}: 12 characters); "
                        "default: $RESEARCH_BENCH_COMMIT_URL, the ini key research_commit_url, or the git remote")
    p.add_argument("--no-commit-links", action="store_true", help="do not link commits")


def commit_labels(shas, cwd: str | Path = ".") -> list:
    """The run.history.Commit (date, subject) of each of `shas`; none where git cannot say."""
    from ..run.continuous import ContinuousError
    from ..run.history import describe
    with suppress(ContinuousError):
        return describe(Path(cwd), list(shas or ()))
    return []


def run(args) -> int:
    from llm_research_bench.engine.envvars import env

    from ..analysis.measures import is_measurement
    from ..report.html import write_report
    from ..run.environment import git_order, remote_commit_url
    records = read_for_output(args, args.out, example="report.html").records
    if not records:
        print(f"report: no result records under {args.results_dir}; the page says so (run `make bench` to "
              f"make some)", file=sys.stderr)
    order, note = git_order([r.commit for r in records], ".")
    template = None if args.no_commit_links else (args.commit_url or env("COMMIT_URL") or ini_value(
        "research_commit_url") or remote_commit_url("."))   # the precedence the module docstring gives
    try:
        path = write_report(records, args.out, machine=args.machine, title=args.title, git_order=order,
                            order_note=note, commit_url=template, commits=commit_labels(order))
    except OSError as e:
        raise UsageError(f"cannot write {args.out} ({e.strerror or e}): choose another --out") from None
    n = sum(is_measurement(r) for r in records)
    print(f"report: wrote {path} ({path.stat().st_size:,} bytes) from {len(records)} records ({n} measured)")
    return 0
