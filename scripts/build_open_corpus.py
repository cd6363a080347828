"""Build benches/data/tooldocs/passages.jsonl from the documentation that installed packages ship.

The open-question corpus of the quality benches is the long description (README) that each of a few
permissively licensed packages ships in its installed metadata (importlib.metadata): no download, and the
same text every install of these versions has. The script splits each README into sections (reStructuredText
and Markdown headings), drops badges, images, link targets and long code blocks (short ones, <= 3 lines, are
kept as text: `pip install x`, a decorator), and groups a section's paragraphs into passages of about 60-180
words. Passage ids are `<package>:<n>` in document order; the title is `<package>: <section>`.

    python scripts/build_open_corpus.py [--out benches/data/tooldocs]

It refuses to run against versions other than the ones listed (the committed questions name passage ids of
these versions' texts): rebuild only together with the questions. questions.jsonl is written by hand.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import metadata
from pathlib import Path

# distribution -> (version the committed corpus was built from, SPDX licence of that version)
SOURCES: dict[str, tuple[str, str]] = {
    "pytest-timeout": ("2.4.0", "MIT"),
    "pytest-benchmark": ("5.3.1", "BSD-2-Clause"),
    "tabulate": ("0.10.0", "MIT"),
    "diskcache": ("5.6.3", "Apache-2.0"),
    "memray": ("1.20.0", "Apache-2.0"),
    "llama_cpp_python": ("0.3.36", "MIT"),
    "rich": ("15.0.0", "MIT"),
    "sentence-transformers": ("6.2.0", "Apache-2.0"),
}
MIN_WORDS, MAX_WORDS = 60, 180
_CODE_LINE = re.compile(r"^\s*(>>>|\.\.\.\s|\$ )")                          # interpreter sessions
_BOX = re.compile("[\u2500-\u257f]|^\\s*[+|][-=+|: ]{6,}$")                  # drawn tables
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_DROP_LINE = re.compile(r"^\s*(\.\. \|[^|]+\|\s*image::|\.\. _[^:]+:|__ http|\.\. image::|\.\. figure::|"
                        r":target:|:alt:|:width:|:height:|:align:|\[!\[|!\[|<[a-z/!][^>]*>\s*$|\|[a-z-]+\|(\s+\|[a-z-]+\|)*\s*$)",
                        re.IGNORECASE)


def _clean_inline(text: str) -> str:
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)                    # md images
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)                 # md links -> their text
    text = re.sub(r"`([^`<]+?)\s*<[^>]+>`_+", r"\1", text)              # rst links -> their text
    text = re.sub(r":[a-z]+:`([^`]+)`", r"\1", text)                     # rst roles
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"`([^`]+)`_?", r"\1", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)                                  # html tags
    text = re.sub(r"\|[a-zA-Z0-9_-]+\|", "", text)                       # rst substitutions (badges)
    return " ".join(text.split())


def sections(body: str) -> list[tuple[str, list[str]]]:
    """(heading, paragraphs) in document order; code blocks of more than 3 lines are dropped."""
    lines = body.splitlines()
    out: list[tuple[str, list[str]]] = [("Overview", [])]
    para: list[str] = []
    i = 0

    def flush() -> None:
        if para:
            text = _clean_inline(" ".join(para))
            if len(text.split()) >= 4:
                out[-1][1].append(text)
            para.clear()

    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip().startswith("```"):                     # md fenced code
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            code = [c.strip() for c in lines[i + 1:j] if c.strip()]
            if 0 < len(code) <= 3:
                out[-1][1].append("Example: " + " ; ".join(code))
            i = j + 1
            continue
        m = _MD_HEADING.match(line)
        if m:
            flush()
            out.append((_clean_inline(m.group(2)), []))
            i += 1
            continue
        if line.strip() and _RST_UNDERLINE.match(nxt) and len(nxt.strip()) >= len(line.strip()) - 2 \
                and not _RST_UNDERLINE.match(line):
            flush()
            out.append((_clean_inline(line.strip()), []))
            i += 2
            continue
        if _RST_UNDERLINE.match(line):                          # an overline, or a stray rule
            flush()
            i += 1
            continue
        if _DROP_LINE.match(line) or _CODE_LINE.match(line) or _BOX.search(line):
            flush()
            i += 1
            continue
        if re.match(r"^\s*\.\. (code|code-block|sourcecode)::", line) or (line.rstrip().endswith("::") and
                                                                            not line.strip().startswith("..")):
            # rst literal block: the indented lines after it (and after a blank line)
            lead = line.rstrip()[:-2].rstrip() if line.rstrip().endswith("::") and not line.strip().startswith("..") else ""
            if lead:
                para.append(lead + ":")
            flush()
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
                if lines[j].strip().startswith(":") and j == i + 1:   # directive options
                    pass
                j += 1
            code = [c.strip() for c in lines[i + 1:j] if c.strip() and not c.strip().startswith(":")]
            if 0 < len(code) <= 3:
                out[-1][1].append("Example: " + " ; ".join(code))
            i = j
            continue
        if re.match(r"^\s*\.\. [a-z-]+::", line):                  # other directives (note, warning): keep body
            flush()
            rest = line.split("::", 1)[1].strip()
            if rest:
                para.append(rest)
            i += 1
            continue
        if not line.strip():
            flush()
        else:
            para.append(line.strip().lstrip("-*").strip() if re.match(r"^\s*[-*]\s+", line) else line.strip())
        i += 1
    flush()
    return [(h, ps) for h, ps in out if ps]


def passages_of(package: str, body: str) -> list[dict]:
    out: list[dict] = []
    for heading, paras in sections(body):
        buf: list[str] = []

        def emit() -> None:
            text = " ".join(buf)
            if len(text.split()) >= 12:
                out.append({"id": f"{package}:{len(out) + 1:03d}", "title": f"{package}: {heading}", "text": text})
            buf.clear()

        for p in paras:
            words = p.split()
            if len(words) > MAX_WORDS:                      # a long paragraph: split at sentence ends
                if buf:
                    emit()
                sent = re.split(r"(?<=[.!?])\s+", p)
                for s in sent:
                    if buf and len(" ".join(buf + [s]).split()) > MAX_WORDS:
                        emit()
                    buf.append(s)
                emit()
                continue
            if buf and len(" ".join(buf + [p]).split()) > MAX_WORDS:
                emit()
            buf.append(p)
            if len(" ".join(buf).split()) >= MIN_WORDS:
                emit()
        if buf:
            if out and out[-1]["title"] == f"{package}: {heading}" and len(" ".join(buf).split()) < MIN_WORDS // 2 \
                    and len((out[-1]["text"] + " " + " ".join(buf)).split()) <= MAX_WORDS:
                out[-1]["text"] += " " + " ".join(buf)
                buf.clear()
            else:
                emit()
    return out


NOTICE_HEAD = """tooldocs: an open-question corpus for llm-research-bench

passages.jsonl holds passages of the README (the long description shipped in each package's installed
metadata) of the packages below, split into sections and paragraphs by scripts/build_open_corpus.py; badges,
images, link targets and long code examples are left out, the words are the authors'. Each passage's id names
its package. questions.jsonl (questions, free-text gold answers, gold passage ids) was written for this project
and is under the project's licence (MIT).

Sources, versions, licences and copyright notices (each licence's full text is in licenses/):
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "benches" / "data" / "tooldocs"))
    a = ap.parse_args(argv)
    rows: list[dict] = []
    out = Path(a.out)
    (out / "licenses").mkdir(parents=True, exist_ok=True)
    notice = [NOTICE_HEAD]
    for dist, (version, lic) in SOURCES.items():
        md = metadata.metadata(dist)
        if md["Version"] != version:
            print(f"error: {dist} {md['Version']} is installed; the corpus is built from {version} (its questions "
                  f"name passage ids of that text): install {dist}=={version}", file=sys.stderr)
            return 2
        body = md.get_payload() or md.get("Description") or ""
        name = dist.replace("_", "-")
        rows += passages_of(name, body)
        lic_files = [f for f in (metadata.distribution(dist).files or [])
                     if f.name.upper().startswith(("LICENSE", "COPYING")) and ".dist-info" in str(f)]
        if not lic_files:
            print(f"error: {dist} ships no licence file", file=sys.stderr)
            return 2
        text = lic_files[0].locate().read_text(encoding="utf-8")
        (out / "licenses" / f"{name}.txt").write_text(text, encoding="utf-8")
        holder = next((ln.strip().rstrip(".") for ln in text.splitlines()
                       if re.match(r"(?i)copyright\b.*\d{4}", ln.strip())), None)
        if holder is None:
            holder = "Authors (package metadata): " + (md.get("Author") or md.get("Author-email") or "see the README")
        notice.append(f"- {name} {version} ({lic}): its README (package long description). {holder}. "
                      f"Licence: licenses/{name}.txt\n")
    (out / "NOTICE").write_text("".join(notice), encoding="utf-8")
    with open(out / "passages.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} passages from {len(SOURCES)} packages -> {out / 'passages.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
