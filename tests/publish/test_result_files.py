"""Tests of `match_result_files` on local paths and of the glob translation for Cloud Storage names."""

import glob
import os

import pytest

from transforms.result_files import glob_to_regex, match_result_files


def test_glob_matches_files(tmp_path):
    for name in ("a.jsonl", "b.jsonl", "c.txt"):
        (tmp_path / name).write_bytes(b"{}\n")

    files = match_result_files([str(tmp_path / "*.jsonl")])

    assert [result_file.uri for result_file in files] == [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]


@pytest.mark.parametrize("name", ["odd[1].jsonl", "what?.jsonl", "star*.jsonl", "[.jsonl"])
def test_name_with_glob_characters_found(tmp_path, name):
    (tmp_path / name).write_bytes(b"{}\n")

    [result_file] = match_result_files([str(tmp_path / name)])

    assert result_file.uri == str(tmp_path / name)
    assert result_file.size == 3


def test_glob_match_wins_over_name(tmp_path):
    (tmp_path / "odd1.jsonl").write_bytes(b"{}\n")
    (tmp_path / "odd[1].jsonl").write_bytes(b"{}\n")

    [result_file] = match_result_files([str(tmp_path / "odd[1].jsonl")])

    assert result_file.uri == str(tmp_path / "odd1.jsonl")


def test_folder_named_in_error(tmp_path):
    with pytest.raises(FileNotFoundError) as raised:
        match_result_files([str(tmp_path)])

    assert "is a folder" in str(raised.value)
    assert f"'{tmp_path}/**/predictions.jsonl'" in str(raised.value)


def test_missing_file_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="No file matches --input"):
        match_result_files([str(tmp_path / "missing[1].jsonl")])


# Files of a small tree, and globs whose Cloud Storage matches must equal the local ones.
TREE = ["a.jsonl", "b.txt", "z1.jsonl", "z!.jsonl", "x/a.jsonl", "x/y/a.jsonl", "x/y/b.jsonl", "xa/a.jsonl"]
TREE_GLOBS = ["*.jsonl", "**.jsonl", "**/*.jsonl", "**/a.jsonl", "**", "x/**", "x/**/*.jsonl", "x/**/b.jsonl",
              "x*/a.jsonl", "x/*/a.jsonl", "?.jsonl", "z[!1].jsonl", "z[1!].jsonl", "z[0-9].jsonl", "x**/a.jsonl"]


@pytest.mark.parametrize("pattern", TREE_GLOBS)
def test_gcs_glob_matches_like_local(tmp_path, pattern):
    for name in TREE:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{}\n")
    local = {os.path.relpath(path, tmp_path) for path in glob.glob(str(tmp_path / pattern), recursive=True)
             if os.path.isfile(path)}

    regex = glob_to_regex(pattern)

    assert {name for name in TREE if regex.match(name)} == local
