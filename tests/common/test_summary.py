"""Reading run summaries from Beam metrics."""

from apache_beam.metrics import monitoring_infos
from apache_beam.runners.portability.fn_api_runner.fn_runner import RunnerResult
from apache_beam.runners.runner import PipelineState

from pipelines.summary import counter_totals

BUNDLES = 5000


def counter_info(name: str, value: int):
    return monitoring_infos.int64_user_counter("job", name, value, ptransform="Step")


def test_counter_totals_many_bundles():
    # The FnApiRunner chains one lazy generator per bundle, as a long streaming run does.
    chained = [counter_info("events_read", 1)]
    for _ in range(BUNDLES - 1):
        chained = monitoring_infos.consolidate(_chain(counter_info("events_read", 1), chained))
    result = RunnerResult(PipelineState.DONE, {"stage": chained})

    assert counter_totals(result, "job") == {"events_read": BUNDLES}


def _chain(first, rest):
    yield first
    yield from rest
