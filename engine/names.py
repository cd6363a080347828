"""The one pattern for names that become paths or keys of stored results: profile names, machine ids
($RESEARCH_BENCH_MACHINE_ID) and saved session names (--research-save). A name is 1 to 80 characters, letters,
digits, `.`, `_` and `-`, starting with a letter or digit: so never empty, hidden (`_x`, `.x`), a path (`/`, `..`,
`.`) or holding control characters. Checked where a name enters; light (the standard library only)."""
from __future__ import annotations

import re

PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
RULE = "1-80 letters, digits, '.', '_' or '-', starting with a letter or digit"


class BadName(ValueError):
    """A name outside PATTERN; the message says which name, where it came from and the rule."""


def check_name(value: object, what: str) -> str:
    """`value` when it matches PATTERN; BadName naming `what` (e.g. "profile name") and the rule otherwise."""
    if isinstance(value, str) and PATTERN.fullmatch(value):
        return value
    raise BadName(f"{what} {ascii(value) if isinstance(value, str) else repr(value)} is not a valid name ({RULE})")
