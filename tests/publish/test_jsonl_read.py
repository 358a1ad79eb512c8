"""Reading result files into numbered lines: line ends, blanks, long lines and block splits."""

import contextlib
import gzip

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.dead_letter_records import DEAD_LETTERS, MAX_RAW_BYTES
from transforms.jsonl_read import ReadBlockLinesFn, ReadResultLines, iter_lines, plan_blocks
from transforms.result_files import GUNZIP_OUTPUT_BYTES, iter_byte_range, iter_gunzipped, match_result_files


def split(data: bytes, max_line_bytes: int = 1 << 20, chunk_size: int = 7):
    chunks = [data[start:start + chunk_size] for start in range(0, len(data), chunk_size)]
    return [(line.number, line.data) for line in iter_lines(iter(chunks), 1, max_line_bytes)]


@pytest.mark.parametrize("data, expected", [
    (b"a\nb\nc\n", [(1, b"a"), (2, b"b"), (3, b"c")]),
    (b"a\r\nb\r\nc\r\n", [(1, b"a"), (2, b"b"), (3, b"c")]),
    (b"a\nb\r\nc\n", [(1, b"a"), (2, b"b"), (3, b"c")]),
    (b"a\nb\nc", [(1, b"a"), (2, b"b"), (3, b"c")]),
    (b"a\r\nb\r\nc", [(1, b"a"), (2, b"b"), (3, b"c")]),
    (b"a\n\n  \nb\n", [(1, b"a"), (2, b""), (3, b"  "), (4, b"b")]),
    (b"", []),
    (b"\n", [(1, b"")]),
], ids=["lf", "crlf", "mixed", "no-final-lf", "crlf-no-final", "blanks", "empty", "only-lf"])
def test_iter_lines_line_ends(data, expected):
    assert split(data) == expected


def test_iter_lines_long_line_is_capped():
    data = b"x" * (MAX_RAW_BYTES * 3) + b"\nshort\n"

    lines = list(iter_lines(iter([data]), 1, max_line_bytes=MAX_RAW_BYTES))

    assert len(lines[0].data) == MAX_RAW_BYTES
    assert lines[0].size == MAX_RAW_BYTES * 3
    assert lines[1].data == b"short"


def test_iter_lines_stop_offset_ends_block():
    data = b"aa\nbb\ncc\n"

    lines = list(iter_lines(iter([data]), 1, 100, start_offset=0, stop_offset=4))

    assert [line.data for line in lines] == [b"aa", b"bb"]


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=30),
       chunk_size=st.integers(min_value=1, max_value=20), final_newline=st.booleans())
def test_iter_lines_matches_split(lines, chunk_size, final_newline):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    expected = [line[:-1] if line.endswith(b"\r") else line for line in data.split(b"\n")]
    if data.endswith(b"\n") or not data:
        expected = expected[:-1]

    assert [line for _, line in split(data, chunk_size=chunk_size)] == expected


@contextlib.contextmanager
def read_with_blocks(path, block_size, max_line_bytes=1 << 20):
    """Build a pipeline that reads `path`; it runs when the `with` block ends."""
    files = match_result_files([str(path)])
    with TestPipeline() as pipeline:
        read = pipeline | ReadResultLines(files, max_line_bytes=max_line_bytes, block_size=block_size)
        lines = read.lines | beam.FlatMap(lambda batch: list(zip(batch.numbers, batch.data)))
        dead_letter_lines = read[DEAD_LETTERS] | beam.Map(lambda letter: letter["source"]["line"])
        yield lines, dead_letter_lines


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 8, 13, 64, 1 << 20])
def test_block_split_keeps_line_numbers(tmp_path, block_size):
    path = tmp_path / "predictions.jsonl"
    content = [b'{"a": 1}', b"", b'{"b": 22}', b"   ", b'{"c": 333}\r', b'{"d": 4444}']
    path.write_bytes(b"\n".join(content))
    expected = [(1, b'{"a": 1}'), (3, b'{"b": 22}'), (5, b'{"c": 333}'), (6, b'{"d": 4444}')]

    with read_with_blocks(path, block_size) as (lines, dead_letter_lines):
        assert_that(lines, equal_to(expected))


def test_plan_blocks_covers_file(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_bytes(b"x" * 100)
    result_file = match_result_files([str(path)])[0]

    blocks = plan_blocks(result_file, block_size=30)

    assert [(block.start, block.end) for block in blocks] == [(0, 30), (30, 60), (60, 90), (90, 100)]


def test_bom_removed_from_first_line(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"b": 2}\n')

    with read_with_blocks(path, block_size=4) as (lines, dead_letter_lines):
        assert_that(lines, equal_to([(1, b'{"a": 1}'), (2, b'{"b": 2}')]))


def test_gzip_file_read_whole(tmp_path):
    path = tmp_path / "predictions.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\n\n{"b": 2}\n') + gzip.compress(b'{"c": 3}\n'))

    with read_with_blocks(path, block_size=4) as (lines, dead_letter_lines):
        assert_that(lines, equal_to([(1, b'{"a": 1}'), (3, b'{"b": 2}'), (4, b'{"c": 3}')]))


def test_truncated_gzip_becomes_dead_letter(tmp_path):
    path = tmp_path / "predictions.jsonl.gz"
    compressed = gzip.compress(b'{"a": 1}\n' + b'{"b": 2}\n' * 2000)
    path.write_bytes(compressed[:len(compressed) // 2])

    with read_with_blocks(path, block_size=1 << 20) as (lines, dead_letter_lines):
        assert_that(dead_letter_lines | beam.combiners.Count.Globally(), equal_to([1]))


def gzip_dead_letter_reasons(path) -> list:
    [result_file] = match_result_files([str(path)])
    read = ReadBlockLinesFn(max_line_bytes=1 << 20)
    read.setup()
    outputs = read.process(plan_blocks(result_file)[0], {})
    return [output.value["reason"] for output in outputs if isinstance(output, beam.pvalue.TaggedOutput)]


def test_damaged_gzip_reason_names_line(tmp_path):
    path = tmp_path / "predictions.jsonl.gz"
    compressed = gzip.compress(b'{"a": 1}\n' + b'{"b": 2}\n' * 2000)
    path.write_bytes(compressed[:len(compressed) // 2])

    [reason] = gzip_dead_letter_reasons(path)

    assert reason.startswith("The gzip data after line ")
    assert not reason.endswith("..")


def test_not_gzip_reason_names_start(tmp_path):
    path = tmp_path / "predictions.jsonl.gz"
    path.write_bytes(b'{"a": 1}\n')

    [reason] = gzip_dead_letter_reasons(path)

    assert reason.startswith("The gzip data from the start of the file cannot be decompressed: ")
    assert not reason.endswith("..")


def test_too_long_line_becomes_dead_letter(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b'{"b": "' + b"x" * 500 + b'"}\n{"c": 3}\n')

    with read_with_blocks(path, block_size=64, max_line_bytes=100) as (lines, dead_letter_lines):
        assert_that(lines, equal_to([(1, b'{"a": 1}'), (3, b'{"c": 3}')]), label="Lines")
        assert_that(dead_letter_lines, equal_to([2]), label="DeadLetters")


def test_gzip_bomb_read_in_bounded_pieces(tmp_path):
    path = tmp_path / "predictions.jsonl.gz"
    content = b'{"a": "' + b"x" * (40 << 20) + b'"}\n{"b": 2}\n'
    path.write_bytes(gzip.compress(content))
    result_file = match_result_files([str(path)])[0]

    pieces = list(iter_gunzipped(iter_byte_range(result_file, 0, result_file.size)))

    assert max(len(piece) for piece in pieces) <= GUNZIP_OUTPUT_BYTES
    assert b"".join(pieces) == content


def test_gzip_bomb_line_becomes_dead_letter(tmp_path):
    path = tmp_path / "predictions.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": "' + b"x" * (40 << 20) + b'"}\n{"b": 2}\n'))

    with read_with_blocks(path, block_size=1 << 20, max_line_bytes=1 << 20) as (lines, dead_letter_lines):
        assert_that(lines, equal_to([(2, b'{"b": 2}')]), label="Lines")
        assert_that(dead_letter_lines, equal_to([1]), label="DeadLetters")


def test_gzip_trailing_bytes_keep_last_line(tmp_path):
    path = tmp_path / "predictions.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\n{"b": 2}') + b"this is not gzip\n")

    with read_with_blocks(path, block_size=1 << 20) as (lines, dead_letter_lines):
        assert_that(lines, equal_to([(1, b'{"a": 1}'), (2, b'{"b": 2}')]), label="Lines")
        assert_that(dead_letter_lines, equal_to([3]), label="DeadLetters")


def test_truncated_gzip_keeps_cut_line_bytes(tmp_path):
    path = tmp_path / "predictions.jsonl.gz"
    compressed = gzip.compress(b'{"a": 1}\n{"b": "' + b"x" * 100_000 + b'"}\n')
    path.write_bytes(compressed[:-20])

    with read_with_blocks(path, block_size=1 << 20) as (lines, dead_letter_lines):
        assert_that(lines | beam.Map(lambda line: (line[0], line[1][:7])), equal_to([(1, b'{"a": 1'), (2, b'{"b": "')]),
                    label="Lines")
        assert_that(dead_letter_lines, equal_to([3]), label="DeadLetters")
