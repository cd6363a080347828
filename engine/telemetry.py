"""Telemetry documents: built from measured values only, validated against the JSON Schema, written atomically."""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "telemetry.schema.json"
SCHEMA_VERSION = "1.0"


class TelemetryInvalid(ValueError):
    """A telemetry document breaks the schema; the message names the JSON path and the rule."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def metric_specs() -> dict[str, dict]:
    """Metric name -> its schema entry (type, x-unit, x-better, x-label, description): the one list of metrics."""
    return schema()["properties"]["metrics"]["properties"]


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator
    s = schema()
    Draft202012Validator.check_schema(s)
    return Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER)


def json_path(err) -> str:
    p = "$"
    for part in err.absolute_path:
        p += f"[{part}]" if isinstance(part, int) else f".{part}"
    return p


def validation_errors(doc: Any) -> list[str]:
    """Every schema violation as 'JSON path: rule broken (message)'; empty when valid."""
    errs = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{json_path(e)}: {e.validator} ({e.message})" for e in errs]


def validate(doc: Any) -> None:
    errs = validation_errors(doc)
    if errs:
        raise TelemetryInvalid(errs)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<!\w)(?:\+?\d[\d\s().-]{7,}\d)(?!\w)")


def redact(text: str) -> str:
    """E-mail addresses and phone numbers replaced, for text that is stored or logged on request."""
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


def write_atomic(path: str | Path, doc: Any) -> Path:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
