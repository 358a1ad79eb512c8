"""JSON Schemas (Draft 2020-12) for every message that crosses a boundary.

The `.json` files in this package are the single source of truth. Pipelines
validate with `jsonschema-rs` for speed; tests validate with the reference
`jsonschema` package so that the two implementations check each other.
"""

import functools
import importlib.resources
import json

PREDICTION_LINE = "prediction-line.schema.json"
BATCH_RESULT_EVENT = "batch-result-event.schema.json"
DEAD_LETTER = "dead-letter.schema.json"
PROMPT_INJECTION = "prompt-injection.schema.json"


@functools.cache
def load_text(name: str) -> str:
    """Return the text of the schema file `name` from this package."""
    return importlib.resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def load(name: str) -> dict:
    """Return a fresh parsed copy of the schema file `name`."""
    return json.loads(load_text(name))
