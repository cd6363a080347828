"""Which stored runs a session is compared with (pure): a commit's clean runs, by default the latest other commit's
(HEAD's own for a dirty session); or the newest session saved under a --research-save name, dirty or not."""
from __future__ import annotations

from typing import Iterable, Sequence

from ..records import ResultRecord, is_usable, series_key


def saved_as(rec: ResultRecord) -> str | None:
    """The name the record's session was saved under (--research-save), if any."""
    return (rec.extra or {}).get("saved_as")


def profile_digest(rec: ResultRecord) -> str | None:
    return (rec.extra or {}).get("profile_digest")


def saved_session(records: Iterable[ResultRecord], name: str) -> list[ResultRecord]:
    """The records of the newest session saved under `name` (a name may be saved again; the newest wins)."""
    named = [r for r in records if saved_as(r) == name]
    sid = (max(named, key=lambda r: r.timestamp).extra or {}).get("session_id") if named else None
    return [r for r in named if (r.extra or {}).get("session_id") == sid]


def latest_other_commit(records: Iterable[ResultRecord], *, current_commit: str | None,
                        fingerprint: str | None, keys: set[str] | None = None,
                        current_dirty: bool = False) -> str | None:
    """The commit of the newest usable clean record on this machine, other than `current_commit` unless the session
    ran on a dirty tree; with `keys`, of those series only (a commit where only other benches ran is no baseline)."""
    ok = [r for r in records if (fingerprint is None or r.machine_fingerprint == fingerprint)
          and (keys is None or series_key(r) in keys) and not r.dirty and r.commit and is_usable(r)
          and not (current_commit and r.commit == current_commit and not current_dirty)]
    return max(ok, key=lambda r: r.timestamp).commit if ok else None


def pick_default_commit(mine: Sequence[ResultRecord], current: Sequence[ResultRecord], *,
                        current_commit: str | None, fingerprint: str,
                        current_dirty: bool = False) -> tuple[str | None, str]:
    """The default baseline commit among this machine's records `mine`, and how it was chosen: the latest other
    commit (dirty session: possibly HEAD) with clean runs of these series, on the same profile settings if any."""
    settings = {(series_key(r), profile_digest(r)) for r in current}
    kw = dict(current_commit=current_commit, fingerprint=fingerprint, keys={series_key(r) for r in current},
              current_dirty=current_dirty)
    what = "the latest commit with clean runs" if current_dirty else "the latest other commit measured"
    commit = latest_other_commit([r for r in mine if (series_key(r), profile_digest(r)) in settings], **kw)
    if commit is not None:
        return commit, f"{what} on this machine with the same profile settings"
    return latest_other_commit(mine, **kw), f"{what} on this machine"


def baseline_records(stored: Sequence[ResultRecord], current: Sequence[ResultRecord], *,
                     session_id: str | None) -> list[ResultRecord]:
    """The baseline commit's stored records to compare with: not this session's own, and, for a series that
    has runs on the current profile settings there, only those."""
    ids = {r.record_id for r in current}
    settings = {(series_key(r), profile_digest(r)) for r in current}
    base = [r for r in stored if r.record_id not in ids and (r.extra or {}).get("session_id") != session_id]
    like = {series_key(r) for r in base if (series_key(r), profile_digest(r)) in settings}
    return [r for r in base if series_key(r) not in like or (series_key(r), profile_digest(r)) in settings]
