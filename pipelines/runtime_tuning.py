"""Process settings that make the local runner spend its time on records instead of waits and bookkeeping.

Both apply to the process that calls them: the in-process FnApiRunner of the
local runner. Dataflow workers and the workers of
`--direct_running_mode=multi_processing` are other processes and keep Beam's
and Python's defaults.

State sampling. Beam 2.77 starts a state-sampler thread for every bundle.
The thread sleeps between samples, starting at 1% of its period and growing
to the full period of 200 ms, and the end of the bundle joins it. So every
bundle that runs longer than about a second ends with a wait of up to 200 ms
while the worker thread does nothing. The extraction job ends a bundle every
20,000 records, and there the wait was about a tenth of its time (py-spy,
100,000 events). Beam has no option for the period, so
`shorten_state_sampling` changes the default of `StateSampler`'s
`sampling_period_ms` argument, which the bundle processor leaves unset. A
shorter period also makes the per-step `msecs` counters finer; each sample
takes a lock and reads the clock.

Garbage collection. After the imports the collector tracks about 150,000
objects that live until the process exits: modules, Beam's protos, the
pipeline graph. Python's full collection walks all of them. In two publish
runs, the one full collection during the pipeline took 60 and 75 ms
(measured with `gc.callbacks`), at the end of the main bundle.
`start_up_objects_frozen` keeps these objects out of the collector's view.
"""

import contextlib
import gc
import inspect
import logging
from typing import Iterator

from apache_beam.runners.worker import statesampler

_LOGGER = logging.getLogger(__name__)

# The sampler thread wakes up to 50 times a second instead of 5, and a bundle waits at most this long for it.
LOCAL_SAMPLING_PERIOD_MS = 20

_PARAMETER = "sampling_period_ms"


def shorten_state_sampling(period_ms: int = LOCAL_SAMPLING_PERIOD_MS) -> bool:
    """Make the state samplers that this process creates from now on sample every `period_ms` milliseconds.

    Returns:
        True if the period was set. False, with a warning, if the installed
        Beam's `StateSampler` takes no such argument with a default, in which
        case nothing is changed.
    """
    if period_ms < 1:
        raise ValueError(f"The sampling period must be at least 1 ms, not {period_ms}.")
    init = statesampler.StateSampler.__init__
    parameters = list(inspect.signature(init).parameters.values())
    if not parameters or parameters[-1].name != _PARAMETER or parameters[-1].default is inspect.Parameter.empty:
        _LOGGER.warning("Beam's StateSampler has no %s argument with a default; keeping its sampling period.",
                        _PARAMETER)
        return False
    init.__defaults__ = init.__defaults__[:-1] + (period_ms,)
    return True


@contextlib.contextmanager
def start_up_objects_frozen() -> Iterator[int]:
    """Within the block, leave the objects that exist when it starts out of garbage collection.

    On entry, garbage is collected once and every object alive is frozen; on
    exit they are unfrozen. Run the pipeline inside the block: the objects
    that records create are collected as usual, and a process that runs
    several pipelines, such as a test session, frees the graphs of earlier
    runs.

    Yields:
        The number of objects frozen.
    """
    gc.collect()
    gc.freeze()
    try:
        yield gc.get_freeze_count()
    finally:
        gc.unfreeze()
