"""Corpora: a folder with passages.jsonl (+ optional questions.jsonl), or PubMedQA's ori_pqal.json.

Files are UTF-8, with or without a byte-order mark. Unusable lines (malformed JSON, not UTF-8, empty text,
duplicate id) are skipped and counted when the rest is usable; a corpus with no usable passage is a CorpusError
naming the file and the fix. Gold passage ids that match no passage are dropped from their question, counted in
`Corpus.unknown_gold_ids` and reported in one warning.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from .atomic import open_regular, read_regular

log = logging.getLogger(__name__)

DEFAULT_PUBMEDQA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pubmedqa" / "ori_pqal.json"


class CorpusError(ValueError):
    """The corpus cannot be used; the message names the file and what to fix."""


@dataclass(frozen=True)
class Passage:
    id: str
    text: str
    title: str | None = None


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str | None = None           # "yes" | "no" | "maybe" (a polar label) or a free-text gold answer
    gold_passage_ids: tuple[str, ...] = ()


@dataclass
class Corpus:
    passages: list[Passage]
    questions: list[Question]
    source: str
    format: str
    skipped: dict[str, int] = field(default_factory=dict)   # reason -> count
    unknown_gold_ids: dict[str, tuple[str, ...]] = field(default_factory=dict)   # question id -> ids dropped

    @property
    def id(self) -> str:
        h = hashlib.sha256()
        for p in self.passages:
            h.update(p.id.encode())
            h.update(b"\0")
            h.update(p.text.encode())
            h.update(b"\1")
        return h.hexdigest()[:16]

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def question_by_text(self, text: str) -> Question | None:
        t = " ".join(text.split()).lower()
        for q in self.questions:
            if " ".join(q.question.split()).lower() == t:
                return q
        return None

    def slice(self, n_questions: int) -> "Corpus":
        """The first n questions with only their own gold passages (small corpora for tests)."""
        qs = self.questions[:n_questions]
        keep = {pid for q in qs for pid in q.gold_passage_ids}
        return Corpus([p for p in self.passages if p.id in keep], qs, self.source, self.format + ":slice")


#: A JSON corpus is read whole; anything larger is refused with a message instead of costing the memory.
MAX_JSON_CORPUS_BYTES = 1 << 30
_OWN_FORMAT = ("for your own passages use a .jsonl file, or a folder with passages.jsonl, of one "
               "{\"id\": ..., \"text\": ...} object per line")


def _skip(skipped: dict[str, int], reason: str, where: str) -> None:
    skipped[reason] = skipped.get(reason, 0) + 1
    log.debug("corpus: skipped %s (%s)", where, reason)    # one summary line per corpus is logged at warning level


def _unreadable(path: Path, e: OSError) -> CorpusError:
    why = e.strerror if e.strerror else " ".join(str(e).split()).replace(f"{path} ", "", 1)
    return CorpusError(f"{path}: cannot be read ({why}): pass a corpus file or folder (--corpus)")


def _read_jsonl(path: Path, skipped: dict[str, int]) -> list[dict]:
    rows = []
    try:
        fh = open_regular(path)
    except OSError as e:
        raise _unreadable(path, e) from None
    with fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8-sig" if n == 1 else "utf-8"))   # a leading BOM is allowed
            except UnicodeDecodeError:
                _skip(skipped, "not_utf8", f"{path}:{n}")
                continue
            except json.JSONDecodeError:
                _skip(skipped, "malformed_json", f"{path}:{n}")
                continue
            if not isinstance(obj, dict):
                _skip(skipped, "not_an_object", f"{path}:{n}")
                continue
            obj["_line"] = n
            rows.append(obj)
    return rows


def _passages_from_rows(rows: list[dict], path: Path, skipped: dict[str, int]) -> list[Passage]:
    seen: set[str] = set()
    out = []
    for r in rows:
        pid, text = r.get("id"), r.get("text")
        where = f"{path}:{r.get('_line')}"
        if not isinstance(pid, (str, int)) or str(pid).strip() == "":
            _skip(skipped, "missing_id", where)
            continue
        pid = str(pid)
        if not isinstance(text, str) or not text.strip():
            _skip(skipped, "empty_text", where)
            continue
        if pid in seen:
            _skip(skipped, "duplicate_id", where)
            continue
        seen.add(pid)
        title = r.get("title") if isinstance(r.get("title"), str) else None
        out.append(Passage(pid, " ".join(text.split()), title))
    return out


def _questions_from_rows(rows: list[dict], path: Path, skipped: dict[str, int]) -> list[Question]:
    out = []
    for r in rows:
        q = r.get("question")
        if not isinstance(q, str) or not q.strip():
            _skip(skipped, "empty_question", f"{path}:{r.get('_line')}")
            continue
        gold = r.get("gold_passage_ids") or []
        ans = r.get("answer")
        if isinstance(ans, str):       # a yes/no/maybe label is normalised; a free-text answer is kept as written
            ans = ans.strip().lower() if ans.strip().lower() in ("yes", "no", "maybe") else " ".join(ans.split())
        out.append(Question(str(r.get("id", r.get("_line"))), q.strip(), ans or None,
                            tuple(str(g) for g in gold) if isinstance(gold, list) else ()))
    return out


def _known_gold(questions: list[Question], passage_ids: set[str]
                ) -> tuple[list[Question], dict[str, tuple[str, ...]]]:
    """The questions with only the gold passage ids that name a passage, and question id -> the ids dropped."""
    out, unknown = [], {}
    for q in questions:
        missing = tuple(g for g in q.gold_passage_ids if g not in passage_ids)
        if missing:
            unknown[q.id] = unknown.get(q.id, ()) + missing
            q = replace(q, gold_passage_ids=tuple(g for g in q.gold_passage_ids if g in passage_ids))
        out.append(q)
    return out, unknown


def _load_pubmedqa(path: Path) -> Corpus:
    try:
        data = json.loads(read_regular(path, max_bytes=MAX_JSON_CORPUS_BYTES).decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 ({e.reason} at byte {e.start}): re-save the file as UTF-8") from None
    except json.JSONDecodeError as e:
        raise CorpusError(f"{path}: not valid JSON (line {e.lineno}: {e.msg}); expected PubMedQA's "
                          f"ori_pqal.json, or {_OWN_FORMAT}") from None
    except OSError as e:
        raise _unreadable(path, e) from None
    pubmedqa = isinstance(data, dict) and any(isinstance(r, dict) and "CONTEXTS" in r for r in data.values())
    if not pubmedqa:
        raise CorpusError(f"{path}: JSON, but not PubMedQA's ori_pqal.json format (an object keyed by PMID whose "
                          f"records hold QUESTION and CONTEXTS): {_OWN_FORMAT}")
    passages, questions, skipped = [], [], {}
    for pmid, rec in data.items():
        if not isinstance(rec, dict) or not isinstance(rec.get("CONTEXTS"), list):
            _skip(skipped, "malformed_record", f"{path}:{pmid}")
            continue
        ids = []
        labels = rec.get("LABELS") or []
        for i, ctx in enumerate(rec["CONTEXTS"]):
            if not isinstance(ctx, str) or not ctx.strip():
                _skip(skipped, "empty_text", f"{path}:{pmid}:{i}")
                continue
            pid = f"{pmid}:{i}"
            title = labels[i] if i < len(labels) and isinstance(labels[i], str) else None
            passages.append(Passage(pid, " ".join(ctx.split()), title))
            ids.append(pid)
        q = rec.get("QUESTION")
        if isinstance(q, str) and q.strip():
            dec = rec.get("final_decision")
            questions.append(Question(str(pmid), q.strip(), dec if dec in ("yes", "no", "maybe") else None,
                                      tuple(ids)))
    return Corpus(passages, questions, str(path), "pubmedqa", skipped)


def load_corpus(path: str | Path | None = None) -> Corpus:
    """Load a corpus folder, a passages.jsonl file, or a PubMedQA ori_pqal.json file."""
    p = Path(path) if path else DEFAULT_PUBMEDQA
    if not p.exists():
        raise CorpusError(f"{p}: not found; pass --corpus with a folder holding passages.jsonl, or "
                          f"PubMedQA's ori_pqal.json (../shared/data/pubmedqa/ori_pqal.json)")
    skipped: dict[str, int] = {}
    if p.is_dir():
        pfile = p / "passages.jsonl"
        if not pfile.exists():
            if (p / "ori_pqal.json").exists():
                return load_corpus(p / "ori_pqal.json")
            raise CorpusError(f"{p}: no passages.jsonl in this folder (one JSON object per line with "
                              f"'id' and 'text')")
        passages = _passages_from_rows(_read_jsonl(pfile, skipped), pfile, skipped)
        qfile = p / "questions.jsonl"
        questions = _questions_from_rows(_read_jsonl(qfile, skipped), qfile, skipped) if qfile.exists() else []
        questions, unknown = _known_gold(questions, {x.id for x in passages})
        corpus = Corpus(passages, questions, str(p), "jsonl", skipped, unknown)
    elif p.suffix == ".jsonl":
        corpus = Corpus(_passages_from_rows(_read_jsonl(p, skipped), p, skipped), [], str(p), "jsonl", skipped)
    else:
        corpus = _load_pubmedqa(p)
    if not corpus.passages:
        why = f" ({corpus.skipped_total} lines skipped: {corpus.skipped})" if corpus.skipped else ""
        raise CorpusError(f"{p}: the corpus has no usable passage{why}; each line needs a non-empty "
                          f"'id' and 'text'")
    if corpus.skipped:
        log.warning("corpus %s: %d unusable lines skipped %s", p, corpus.skipped_total, corpus.skipped)
    if corpus.unknown_gold_ids:
        n = sum(len(v) for v in corpus.unknown_gold_ids.values())
        qid, ids = next(iter(corpus.unknown_gold_ids.items()))
        log.warning("corpus %s: %d gold passage id%s in %d question%s %s no passage, e.g. %r in question %r; "
                    "ignored (fix gold_passage_ids in questions.jsonl)", p, n, "" if n == 1 else "s",
                    len(corpus.unknown_gold_ids), "" if len(corpus.unknown_gold_ids) == 1 else "s",
                    "matches" if n == 1 else "match", ids[0], qid)
    return corpus
