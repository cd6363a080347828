"""Which stored runs a session is compared with (pure, over records already read from the store)."""
from __future__ import annotations

from typing import Iterable, Sequence

from ..records import ResultRecord, is_usable, series_key

def latest_other_commit(records: Iterable[ResultRecord], *, current_commit: str | None,
                        fingerprint: str | None, keys: set[str] | None = None) -> str | None:
    """The commit, other than `current_commit`, whose newest usable record on this machine is the newest.
    With `keys`, only records of those series (test ids) count: a commit where only other benches ran is
    no baseline for these."""
    best: tuple[str, str] | None = None
    for r in records:
        if fingerprint is not None and r.machine_fingerprint != fingerprint:
            continue
        if keys is not None and series_key(r) not in keys:
            continue
        if not r.commit or (current_commit and r.commit == current_commit) or not is_usable(r):
            continue
        if best is None or r.timestamp > best[0]:
            best = (r.timestamp, r.commit)
    return best[1] if best else None


def _digest(r: ResultRecord) -> str | None:
    return (r.extra or {}).get("profile_digest")


def pick_default_commit(mine: Sequence[ResultRecord], current: Sequence[ResultRecord], *,
                        current_commit: str | None, fingerprint: str) -> tuple[str | None, str]:
    """The default baseline commit among this machine's stored records `mine`, and how it was chosen.

    Like with like: the latest other commit with runs of these series on the same profile settings
    (profile_digest), else the latest other commit with runs of these series at all."""
    keys = {series_key(r) for r in current}
    settings = {(series_key(r), _digest(r)) for r in current}
    same = [r for r in mine if (series_key(r), _digest(r)) in settings]
    commit = latest_other_commit(same, current_commit=current_commit, fingerprint=fingerprint, keys=keys)
    if commit is not None:
        return commit, "the latest other commit measured on this machine with the same profile settings"
    commit = latest_other_commit(mine, current_commit=current_commit, fingerprint=fingerprint, keys=keys)
    return commit, "the latest other commit measured on this machine"


def baseline_records(stored: Sequence[ResultRecord], current: Sequence[ResultRecord], *,
                     session_id: str | None) -> list[ResultRecord]:
    """The baseline commit's stored records to compare with: not this session's own, and, for a series that
    has runs on the current profile settings there, only those."""
    ids = {r.record_id for r in current}
    settings = {(series_key(r), _digest(r)) for r in current}
    base = [r for r in stored if r.record_id not in ids and (r.extra or {}).get("session_id") != session_id]
    like = {series_key(r) for r in base if (series_key(r), _digest(r)) in settings}
    return [r for r in base if series_key(r) not in like or (series_key(r), _digest(r)) in settings]
