"""Tests of the local runner's process settings: the state-sampling period and the frozen start-up objects."""

import gc
import logging
import weakref

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.worker import statesampler
from apache_beam.utils.counters import CounterFactory

from pipelines import runtime_tuning

# Periods seen by `_RecordSamplingPeriodFn`, which runs in this process on the FnApiRunner.
_SEEN_PERIODS = []


class _RecordSamplingPeriodFn(beam.DoFn):
    def process(self, element):
        _SEEN_PERIODS.append(statesampler.get_current_tracker().sampling_period_ms)
        yield element


@pytest.fixture
def restored_sampler_default():
    """Start from Beam's own period, which a job run earlier in this process may have shortened."""
    defaults = statesampler.StateSampler.__init__.__defaults__
    statesampler.StateSampler.__init__.__defaults__ = (statesampler.DEFAULT_SAMPLING_PERIOD_MS,)
    yield
    statesampler.StateSampler.__init__.__defaults__ = defaults


def test_shorten_sets_new_sampler_period(restored_sampler_default):
    assert statesampler.StateSampler("before", CounterFactory()).sampling_period_ms == 200

    assert runtime_tuning.shorten_state_sampling(15)

    assert statesampler.StateSampler("after", CounterFactory()).sampling_period_ms == 15


def test_shorten_reaches_fnapi_runner_bundles(restored_sampler_default):
    runtime_tuning.shorten_state_sampling()
    _SEEN_PERIODS.clear()

    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        _ = pipeline | "Create" >> beam.Create([1, 2, 3]) | "Record" >> beam.ParDo(_RecordSamplingPeriodFn())

    assert _SEEN_PERIODS == [runtime_tuning.LOCAL_SAMPLING_PERIOD_MS] * 3


def test_shorten_rejects_period_below_1ms(restored_sampler_default):
    with pytest.raises(ValueError, match="at least 1 ms"):
        runtime_tuning.shorten_state_sampling(0)

    assert statesampler.StateSampler.__init__.__defaults__ == (200,)


def test_shorten_leaves_other_sampler_alone(monkeypatch, caplog):
    class OtherSampler:
        def __init__(self, prefix, counter_factory):
            self.prefix = prefix

    monkeypatch.setattr(statesampler, "StateSampler", OtherSampler)

    with caplog.at_level(logging.WARNING, logger=runtime_tuning.__name__):
        assert not runtime_tuning.shorten_state_sampling()

    assert OtherSampler.__init__.__defaults__ is None
    assert "keeping its sampling period" in caplog.text


class _Node:
    """An object that can be part of a reference cycle and be weakly referenced."""

    def __init__(self):
        self.other = None


def test_frozen_block_freezes_live_objects():
    assert gc.get_freeze_count() == 0

    with runtime_tuning.start_up_objects_frozen() as frozen:
        assert frozen > 0
        assert 0 < gc.get_freeze_count() <= frozen  # A frozen object is still freed when its last reference goes.

    assert gc.get_freeze_count() == 0


def test_frozen_block_collects_new_cycles():
    with runtime_tuning.start_up_objects_frozen():
        first, second = _Node(), _Node()
        first.other, second.other = second, first
        watched = weakref.ref(first)
        del first, second

        gc.collect()

        assert watched() is None


def test_frozen_block_collects_old_cycles_after():
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    watched = weakref.ref(first)

    with runtime_tuning.start_up_objects_frozen():
        del first, second
        gc.collect()
        assert watched() is not None  # The collector skips frozen objects.

    gc.collect()

    assert watched() is None
