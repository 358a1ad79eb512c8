"""Reading JSONL result files in parallel, as raw bytes with their line numbers.

Files are cut into blocks of `block_size` bytes that are read in parallel. A
block owns the lines that start inside it. Every line keeps its 1-based line
number, which a split read cannot know by itself: a first pass counts the
newlines in each block (a cheap `bytes.count`), and each block starts from the
sum of the counts before it. Files of one block skip that pass, and gzip files
are always read whole because they cannot be split.

Lines are returned as bytes, not text, so that invalid UTF-8 reaches a dead
letter unchanged. The reader handles:

* LF and CRLF line ends (a CR right before the LF is removed);
* a UTF-8 byte-order mark at the start of the file (removed);
* a last line without a newline (kept);
* blank and whitespace-only lines (skipped and counted);
* lines longer than `max_line_bytes` (not buffered past that size: they become
  a dead letter that keeps the first bytes and the real size).
"""

import dataclasses
import logging
import zlib
from typing import Iterator, NamedTuple, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.batch_coders import SizeEstimatingPickleCoder
from transforms.dead_letter_records import DEAD_LETTERS, MAX_RAW_BYTES, make_dead_letter
from transforms.result_files import ResultFile, iter_byte_range, iter_gunzipped

_LOGGER = logging.getLogger(__name__)

UTF8_BOM = b"\xef\xbb\xbf"
DEFAULT_BLOCK_SIZE = 64 << 20


@dataclasses.dataclass(frozen=True)
class FileBlock:
    """A byte range `[start, end)` of a result file; block 0 starts the file."""

    file: ResultFile
    index: int
    start: int
    end: int

    @property
    def is_last(self) -> bool:
        return self.end >= self.file.size


class LineBatch:
    """Non-blank lines of one result file that travel as one Beam element.

    Lines travel in batches because each element costs the runner a few
    microseconds at each step, about as much as the work on one line.

    Attributes:
        file: The file the lines were read from.
        numbers: The 1-based line number of each line, in increasing order.
        data: Each line without its line end, BOM or CR.
        size_bytes: The total length of `data`.
    """

    __slots__ = ("file", "numbers", "data", "size_bytes")

    def __init__(self, file: ResultFile, numbers: list, data: list, size_bytes: Optional[int] = None):
        self.file = file
        self.numbers = numbers
        self.data = data
        self.size_bytes = sum(map(len, data)) if size_bytes is None else size_bytes

    def __reduce__(self):
        return LineBatch, (self.file, self.numbers, self.data, self.size_bytes)

    def __repr__(self):
        return f"LineBatch({self.file.uri!r}, lines {self.numbers[:1]}..{self.numbers[-1:]}, {self.size_bytes} bytes)"


class LineBatchCoder(SizeEstimatingPickleCoder):
    """Pickles a `LineBatch`; its size estimate is the bytes of its lines."""

    element_type = LineBatch

    def estimate_size(self, value) -> int:
        return value.size_bytes


beam.coders.registry.register_coder(LineBatch, LineBatchCoder)


# A batch ends with the first run of lines (at most one 1 MiB chunk) that reaches either limit.
# A batch of 1,000 typical 3 KB lines is 3 MB.
BATCH_MAX_LINES = 1000
BATCH_MAX_BYTES = 8 << 20


class _RawLine(NamedTuple):
    number: int
    data: bytes
    size: int  # Larger than len(data) when the line was too long to keep.


def plan_blocks(result_file: ResultFile, block_size: int = DEFAULT_BLOCK_SIZE) -> list[FileBlock]:
    """Cut a file into blocks; a gzip or empty file is one block."""
    if result_file.is_gzip or result_file.size <= block_size:
        return [FileBlock(result_file, 0, 0, max(result_file.size, 0))]
    return [FileBlock(result_file, index, start, min(start + block_size, result_file.size))
            for index, start in enumerate(range(0, result_file.size, block_size))]


def count_newlines(block: FileBlock) -> int:
    """Count the LF bytes in the block's byte range."""
    return sum(chunk.count(b"\n") for chunk in iter_byte_range(block.file, block.start, block.end))


def source_of(result_file: ResultFile, line_number) -> dict:
    """Return the dead-letter `source` for a line of a result file."""
    return {"uri": result_file.uri, "bucket": result_file.bucket, "object": result_file.object_name,
            "generation": result_file.generation, "line": line_number}


class _LineRun(NamedTuple):
    """Consecutive lines from `iter_line_runs`.

    Attributes:
        first_number: The number of the first line.
        data: The lines, without LF and with a final CR removed.
        too_long_size: Nonzero for a run of one line longer than the maximum:
            its real size, while `data` keeps only its first `MAX_RAW_BYTES`.
    """

    first_number: int
    data: list
    too_long_size: int = 0


def iter_line_runs(chunks: Iterator[bytes], first_number: int, max_line_bytes: int,
                   start_offset: int = 0, stop_offset: float = float("inf")) -> Iterator[_LineRun]:
    """Split a stream of chunks into runs of consecutive numbered lines.

    A chunk's whole lines come out as one run, checked with a few calls that
    each cover the chunk, so the cost per line stays far below that of
    parsing it. A line longer than `max_line_bytes` is a run of its own.

    Args:
        chunks: The bytes, starting at a line start at `start_offset`.
        first_number: The number of the first line.
        max_line_bytes: Lines longer than this keep only their first
            `MAX_RAW_BYTES` bytes and report their real size, so memory stays
            bounded by about `max_line_bytes` plus one chunk.
        start_offset: The stream offset of the first byte of `chunks`.
        stop_offset: Stop before a line that starts at or after this offset.
            Reading stops there too, so a block does not read the whole file.

    Yields:
        `_LineRun`s in order. A final line without an LF is included, also
        when the chunks end with `zlib.error` or `EOFError`, which are raised
        again after it.
    """
    number = first_number
    line_start = start_offset
    pending = []  # Parts of the current, unfinished line.
    pending_size = 0

    try:
        for chunk in chunks:
            if line_start >= stop_offset:
                return
            parts = chunk.split(b"\n")
            tail = parts.pop()

            if pending and parts:
                # The chunk's first part ends the line that earlier chunks started.
                size = pending_size + len(parts[0])
                yield _one_line(number, b"".join(pending) + parts[0], size, max_line_bytes)
                del parts[0]
                number += 1
                line_start += size + 1
                pending = []
                pending_size = 0
                if line_start >= stop_offset:
                    return

            if parts:
                run_bytes = sum(map(len, parts)) + len(parts)  # With their LFs.
                stopped = line_start + run_bytes - len(parts[-1]) - 1 >= stop_offset
                if stopped:
                    # The block ends inside this chunk: keep the lines that start before stop_offset.
                    lines_in_block, offset = 0, line_start
                    while offset < stop_offset:
                        offset += len(parts[lines_in_block]) + 1
                        lines_in_block += 1
                    parts = parts[:lines_in_block]
                    run_bytes = offset - line_start
                yield from _runs_of_whole_lines(number, parts, max_line_bytes, has_cr=b"\r" in chunk)
                number += len(parts)
                line_start += run_bytes
                if stopped:
                    return

            if tail:
                pending_size += len(tail)
                if pending_size > max_line_bytes:
                    pending = [(b"".join(pending) + tail)[:MAX_RAW_BYTES]]
                else:
                    pending.append(tail)
    except (zlib.error, EOFError):
        # Damaged gzip data ends the stream. The bytes read so far of the unfinished line still make a line,
        # so a complete last line without an LF is not lost, and a cut one becomes a dead letter with its bytes.
        if pending_size and line_start < stop_offset:
            yield _one_line(number, b"".join(pending), pending_size, max_line_bytes)
        raise

    if pending_size and line_start < stop_offset:
        yield _one_line(number, b"".join(pending), pending_size, max_line_bytes)


def _runs_of_whole_lines(number: int, parts: list, max_line_bytes: int, has_cr: bool) -> Iterator[_LineRun]:
    """Yield `parts`, lines without their LF, as one run, or line by line when one is too long."""
    if max(map(len, parts)) > max_line_bytes:
        for offset, part in enumerate(parts):
            yield _one_line(number + offset, part, len(part), max_line_bytes)
        return
    if has_cr:
        parts = [part[:-1] if part[-1:] == b"\r" else part for part in parts]
    yield _LineRun(number, parts)


def _one_line(number: int, data: bytes, size: int, max_line_bytes: int) -> _LineRun:
    if size > max_line_bytes:
        return _LineRun(number, [data[:MAX_RAW_BYTES]], size)
    if data.endswith(b"\r"):
        data = data[:-1]
    return _LineRun(number, [data])


def iter_lines(chunks: Iterator[bytes], first_number: int, max_line_bytes: int,
               start_offset: int = 0, stop_offset: float = float("inf")) -> Iterator[_RawLine]:
    """Split a stream of chunks into numbered lines, one at a time.

    The same lines as `iter_line_runs`, with the same arguments.

    Yields:
        `_RawLine`s without their LF, with a final CR removed, whose `size`
        is the real size for a line that is too long.
    """
    for run in iter_line_runs(chunks, first_number, max_line_bytes, start_offset, stop_offset):
        if run.too_long_size:
            yield _RawLine(run.first_number, run.data[0], run.too_long_size)
            continue
        for offset, data in enumerate(run.data):
            yield _RawLine(run.first_number + offset, data, len(data))


def _skip_to_first_line(chunks: Iterator[bytes], offset: int):
    """Skip the bytes up to and including the first LF.

    Returns:
        `(newline_offset, rest)`: the offset of that LF and an iterator over
        the bytes after it, or `(None, None)` when there is no LF.
    """
    for chunk in chunks:
        index = chunk.find(b"\n")
        if index == -1:
            offset += len(chunk)
            continue
        remainder = chunk[index + 1:]
        return offset + index, _prepend(remainder, chunks)
    return None, None


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


class ReadBlockLinesFn(beam.DoFn):
    """Read the lines that start in one block, and count and skip blank lines.

    The main output is `LineBatch`es of up to `BATCH_MAX_LINES` lines. Lines over `max_line_bytes` and unreadable
    gzip data go to the `dead_letters` output. Every line read, blank or not,
    counts under `lines_read`, so that the pipeline can check that lines read
    = events + dead letters + skipped.

    Side input:
        newline_counts: `{(uri, block_index): number of LF bytes}` for every
            block of a file with more than one block.
    """

    def __init__(self, max_line_bytes: int, namespace: str = "publish_results"):
        self._max_line_bytes = max_line_bytes
        self._namespace = namespace

    def setup(self):
        self._lines_read = Metrics.counter(self._namespace, "lines_read")
        self._skipped_blank = Metrics.counter(self._namespace, "lines_skipped_blank")
        self._too_long = Metrics.counter(self._namespace, "lines_too_long")

    def process(self, block: FileBlock, newline_counts):
        result_file = block.file
        newlines_before = sum(newline_counts[(result_file.uri, index)] for index in range(block.index))
        chunks = iter_byte_range(result_file, max(block.start - 1, 0), result_file.size)
        if result_file.is_gzip:
            chunks = iter_gunzipped(chunks)
            stop_offset = float("inf")
        else:
            stop_offset = block.end

        first_number = 1
        line_start = 0
        if block.start > 0:
            newline_offset, chunks = _skip_to_first_line(chunks, block.start - 1)
            if newline_offset is None:
                chunks = iter(())  # No line starts inside this block.
            else:
                line_start = newline_offset + 1
                first_number = newlines_before + (1 if newline_offset == block.start - 1 else 2)

        # Counted per block, not per line: a Beam counter update costs about as much as reading the line.
        lines_read = 0
        lines_blank = 0
        last_number = first_number - 1
        numbers, batch, batch_bytes = [], [], 0
        try:
            for run in iter_line_runs(chunks, first_number, self._max_line_bytes, line_start, stop_offset):
                number, data = run.first_number, run.data
                lines_read += len(data)
                last_number = number + len(data) - 1
                if run.too_long_size:
                    yield self._too_long_dead_letter(result_file, number, data[0], run.too_long_size)
                    continue
                if number == 1 and block.index == 0 and data[0].startswith(UTF8_BOM):
                    data[0] = data[0][len(UTF8_BOM):]

                run_numbers = range(number, number + len(data))
                if not all(data) or any(map(bytes.isspace, data)):
                    kept = [(line_number, line) for line_number, line in zip(run_numbers, data)
                            if line and not line.isspace()]
                    lines_blank += len(data) - len(kept)
                    run_numbers = [line_number for line_number, _ in kept]
                    data = [line for _, line in kept]
                numbers.extend(run_numbers)
                batch.extend(data)
                batch_bytes += sum(map(len, data))
                if len(batch) >= BATCH_MAX_LINES or batch_bytes >= BATCH_MAX_BYTES:
                    yield LineBatch(result_file, numbers, batch, batch_bytes)
                    numbers, batch, batch_bytes = [], [], 0
        except (zlib.error, EOFError) as error:
            # The rest of a damaged gzip file counts as one unreadable line.
            lines_read += 1
            _LOGGER.error("Failed to decompress %s after line %d: %s", result_file.uri, last_number, error)
            where = f"after line {last_number}" if last_number else "from the start of the file"
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, make_dead_letter(
                pipeline=self._namespace, step="read_lines",
                reason=f"The gzip data {where} cannot be decompressed: {str(error).rstrip('.')}.",
                error_type=type(error).__name__, source=source_of(result_file, last_number + 1), raw=b""))
        finally:
            self._lines_read.inc(lines_read)
            self._skipped_blank.inc(lines_blank)
        if batch:
            yield LineBatch(result_file, numbers, batch, batch_bytes)

    def _too_long_dead_letter(self, result_file: ResultFile, number: int, data: bytes, size: int):
        self._too_long.inc()
        return beam.pvalue.TaggedOutput(DEAD_LETTERS, make_dead_letter(
            pipeline=self._namespace, step="read_lines",
            reason=(f"The line is {size} bytes, longer than the maximum of "
                    f"{self._max_line_bytes} bytes, so it cannot become a Kafka message; "
                    "raise --max_message_bytes to accept it."),
            error_type="LineTooLong", source=source_of(result_file, number),
            raw=data, raw_size=size))


class ReadResultLines(beam.PTransform):
    """Read result files as numbered raw lines, splitting large files into blocks.

    Returns a `DoOutputsTuple` with the main output `lines` of `LineBatch`es
    and the `dead_letters` output.

    Args:
        files: The files to read, usually from `match_result_files`.
        max_line_bytes: The maximum line size in bytes; longer lines become
            dead letters.
        block_size: Bytes per block; each block is read by one worker.
        namespace: The metrics namespace.
    """

    def __init__(self, files: list[ResultFile], max_line_bytes: int,
                 block_size: int = DEFAULT_BLOCK_SIZE, namespace: str = "publish_results"):
        super().__init__()
        self._blocks = [block for result_file in files for block in plan_blocks(result_file, block_size)]
        self._max_line_bytes = max_line_bytes
        self._namespace = namespace

    def expand(self, pbegin):
        blocks = pbegin | "CreateBlocks" >> beam.Create(self._blocks)

        if len(self._blocks) == 1:
            # One whole file: no line numbers to count and no other block to spread the work to.
            newline_counts = {}
        else:
            newline_counts = beam.pvalue.AsDict(
                blocks
                | "KeepSplitFileBlocks" >> beam.Filter(lambda block: not (block.index == 0 and block.is_last))
                | "CountNewlines" >> beam.Map(lambda block: ((block.file.uri, block.index), count_newlines(block))))
            blocks = blocks | "SpreadBlocks" >> beam.Reshuffle()

        return blocks | "ReadBlockLines" >> beam.ParDo(
            ReadBlockLinesFn(self._max_line_bytes, self._namespace), newline_counts=newline_counts
        ).with_output_types(LineBatch).with_outputs(DEAD_LETTERS, main="lines")
