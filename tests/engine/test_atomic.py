"""engine.atomic: the one atomic-write helper (replace, or create-only), files 0644."""
import json
import os
import stat

import pytest

from llm_research_bench.engine import atomic


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_replace_writes_the_whole_new_file(tmp_path):
    f = tmp_path / "t.json"
    atomic.write_json(f, {"a": 1})
    atomic.write_json(f, {"a": 2, "b": [1, 2]})
    assert json.loads(f.read_text()) == {"a": 2, "b": [1, 2]}
    assert f.read_text().endswith("\n")
    assert _names(tmp_path) == ["t.json"]                 # no temp file left behind


def test_text_and_bytes(tmp_path):
    assert atomic.write_text(tmp_path / "a.txt", "héllo") == tmp_path / "a.txt"
    atomic.write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert _names(tmp_path) == ["a.txt", "b.bin"]


def test_missing_parent_folders_are_created(tmp_path):
    f = tmp_path / "x" / "y" / "t.json"
    atomic.write_json(f, [1])
    assert json.loads(f.read_text()) == [1]


def test_exclusive_creates_a_new_file(tmp_path):
    f = tmp_path / "rec.json"
    atomic.write_json(f, {"n": 1}, exclusive=True)
    assert json.loads(f.read_text()) == {"n": 1}
    assert _names(tmp_path) == ["rec.json"]


def test_exclusive_refuses_an_existing_file_and_leaves_it_intact(tmp_path):
    f = tmp_path / "rec.json"
    atomic.write_json(f, {"n": 1})
    before = f.read_bytes()
    with pytest.raises(FileExistsError):
        atomic.write_json(f, {"n": 2}, exclusive=True)
    assert f.read_bytes() == before
    assert _names(tmp_path) == ["rec.json"]               # the temp file is gone too


def test_mode_is_0644_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_json(tmp_path / "r.json", {})
        atomic.write_json(tmp_path / "x.json", {}, exclusive=True)
    finally:
        os.umask(old)
    for name in ("r.json", "x.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_mode_follows_a_stricter_umask(tmp_path):
    old = os.umask(0o077)
    try:
        atomic.write_text(tmp_path / "p.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p.txt").stat().st_mode) == 0o600


@pytest.mark.parametrize("exclusive", [False, True])
def test_a_folder_path_raises_is_a_directory_error(tmp_path, exclusive):
    d = tmp_path / "out"
    d.mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        atomic.write_json(d, {"a": 1}, exclusive=exclusive)
    assert d.is_dir() and _names(d) == []
    assert _names(tmp_path) == ["out"]


def test_a_document_that_cannot_be_serialised_leaves_the_old_file(tmp_path):
    f = tmp_path / "t.json"
    atomic.write_json(f, {"a": 1})
    with pytest.raises(TypeError):
        atomic.write_json(f, {"a": {1, 2}})
    assert json.loads(f.read_text()) == {"a": 1}
    assert _names(tmp_path) == ["t.json"]


