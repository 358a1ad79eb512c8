"""Benchmark input files: realistic Vertex AI result files, generated once and reused.

The lines come from `samples.generate_predictions.make_line`, the same
generator as the sample file, so every figure runs on lines of the shape and
outcome mix the product reads (about 2.8 KB each, most of it the transcript).
The sample generator keeps all rows in memory to shuffle them, which would
need many gigabytes for a 2 GB file, so this module writes rows in chunks of
`CHUNK_LINES` and shuffles each chunk on its own. Vertex AI returns rows in
no particular order, and a chunk-wise shuffle keeps that property.

Files are placed under a `results/YYYY/MM/DD/prediction-model-<timestamp>/`
path, so that the publish job parses a batch date and a prediction folder
as it does for real result files. A file is reused when it already exists
with the requested size, so a second run does not pay for generation again.
"""

import dataclasses
import datetime
import json
import logging
import os
import random

from samples.generate_predictions import make_line

_LOGGER = logging.getLogger(__name__)

CHUNK_LINES = 10_000
DEFAULT_SEED = 20261130
PREDICTION_FOLDER = "prediction-model-2026-11-30T02:00:00.000000Z"


@dataclasses.dataclass(frozen=True)
class InputFile:
    """A generated result file.

    Attributes:
        path: Absolute path of the JSONL file.
        lines: Number of lines.
        size_bytes: Size of the file in bytes.
    """

    path: str
    lines: int
    size_bytes: int

    @property
    def size_mb(self) -> float:
        """Size in MB (10^6 bytes)."""
        return self.size_bytes / 1e6


def result_path(data_dir: str, name: str) -> str:
    """Return the path of a result file named `name` under a Vertex AI-shaped folder of `data_dir`."""
    return os.path.join(os.path.abspath(data_dir), name, "results", "2026", "11", "30", PREDICTION_FOLDER,
                        "predictions.jsonl")


def _iter_encoded_lines(seed: int):
    """Yield encoded lines without end, shuffled within chunks of `CHUNK_LINES`."""
    rng = random.Random(seed)
    start = datetime.datetime(2026, 11, 30, 2, 0, tzinfo=datetime.timezone.utc)
    index = 0
    while True:
        chunk = []
        for _ in range(CHUNK_LINES):
            row = make_line(rng, index, start + datetime.timedelta(milliseconds=137 * index))
            chunk.append(json.dumps(row, ensure_ascii=False).encode("utf-8"))
            index += 1
        rng.shuffle(chunk)
        yield from chunk


def _write(path: str, seed: int, max_lines: int | None, max_bytes: int | None) -> InputFile:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".partial"
    lines = 0
    size = 0
    with open(temporary, "wb") as stream:
        for encoded in _iter_encoded_lines(seed):
            if max_lines is not None and lines >= max_lines:
                break
            if max_bytes is not None and size >= max_bytes:
                break
            stream.write(encoded)
            stream.write(b"\n")
            lines += 1
            size += len(encoded) + 1
    os.replace(temporary, path)
    return InputFile(path, lines, size)


def _count_lines(path: str) -> int:
    lines = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(16 << 20):
            lines += chunk.count(b"\n")
    return lines


def _existing(path: str, metadata_path: str, request: dict) -> InputFile | None:
    """Return the file if it exists and was generated with the same request, else None."""
    if not (os.path.exists(path) and os.path.exists(metadata_path)):
        return None
    with open(metadata_path, encoding="utf-8") as stream:
        metadata = json.load(stream)
    if metadata.get("request") != request or os.path.getsize(path) != metadata.get("size_bytes"):
        return None
    return InputFile(path, metadata["lines"], metadata["size_bytes"])


def ensure_file(data_dir: str, name: str, *, lines: int | None = None, size_bytes: int | None = None,
                seed: int = DEFAULT_SEED) -> InputFile:
    """Generate a result file of `lines` lines or of at least `size_bytes` bytes, or reuse it.

    Exactly one of `lines` and `size_bytes` must be given. With `size_bytes`,
    generation stops at the first line end at or past that size. A JSON file
    next to the data records the request and the result, so a file is reused
    only when it matches the request and its size is unchanged.
    """
    if (lines is None) == (size_bytes is None):
        raise ValueError("ensure_file needs exactly one of lines and size_bytes.")
    path = result_path(data_dir, name)
    metadata_path = os.path.join(os.path.abspath(data_dir), name, "generated.json")
    request = {"lines": lines, "size_bytes": size_bytes, "seed": seed, "chunk_lines": CHUNK_LINES}

    found = _existing(path, metadata_path, request)
    if found is not None:
        _LOGGER.info("Reusing %s: %d lines, %.1f MB", path, found.lines, found.size_mb)
        return found

    _LOGGER.info("Generating %s (%s)", path, f"{lines} lines" if lines is not None else f"{size_bytes} bytes")
    generated = _write(path, seed, lines, size_bytes)
    counted = _count_lines(path)
    if counted != generated.lines:
        raise RuntimeError(f"{path} has {counted} lines after writing {generated.lines}; delete it and run again.")
    with open(metadata_path, "w", encoding="utf-8") as stream:
        json.dump({"request": request, "lines": generated.lines, "size_bytes": generated.size_bytes}, stream)
    _LOGGER.info("Generated %s: %d lines, %.1f MB", path, generated.lines, generated.size_mb)
    return generated
