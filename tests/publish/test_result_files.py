"""Tests of `match_result_files` on local paths: globs, names that look like globs, and folders."""

import pytest

from transforms.result_files import match_result_files


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
