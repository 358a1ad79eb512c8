"""The publish figures: throughput against the two baselines, and peak memory against file size.

Throughput. On one generated file, each repetition runs baseline 1 (raw
produce), baseline 2 (single-process parse, validate, wrap, produce) and the
publish job, one after the other, each to a fresh topic. Interleaving the
three spreads any load from other processes over all of them. The figure is
the median of the repetitions. The job's rate is given twice: over its
pipeline time (from its "Publishing" log line to its summary) and over its
whole process wall time, which adds about a second of interpreter and Beam
start-up. The baselines are loops inside this process, so their time has no
start-up part and compares with the pipeline time.

No record dropped: after each job run the event topic is read back, and
lines read = distinct event keys on the topic + dead letters + skipped
lines must hold. It must also match the job's own summary.

Memory. The job runs once on a file of about 200 MB and once on a file of
about 2 GB, and the peak RSS summed over its process tree (sampled every
100 ms) is compared. Memory that does not grow with the input keeps the
ratio near 1.
"""

import logging
import statistics

from benchmarks import baselines
from benchmarks.publish_job import PublishJobRun, run_publish_job
from benchmarks.topics import count_topic, delete_topics

_LOGGER = logging.getLogger(__name__)

PUBLISH_TARGET_OF_RAW = 0.5
PUBLISH_TARGET_OVER_SINGLE_PROCESS = 5.0
MEMORY_TARGET_RATIO = 1.5


def _job_record(run: PublishJobRun, size_bytes: int, topic_count) -> dict:
    lines = run.summary["lines_read"]
    record = {
        "summary": run.summary,
        "runner": run.runner,
        "wall_seconds": round(run.process.wall_seconds, 3),
        "startup_seconds": _rounded(run.startup_seconds),
        "pipeline_seconds": _rounded(run.pipeline_seconds),
        "shutdown_seconds": _rounded(run.shutdown_seconds),
        "peak_rss_bytes": run.process.peak_rss_bytes,
        "lines_per_second_wall": lines / run.process.wall_seconds,
        "mb_per_second_wall": size_bytes / 1e6 / run.process.wall_seconds,
        "log": run.process.stderr_path,
    }
    if run.pipeline_seconds:
        record["lines_per_second_pipeline"] = lines / run.pipeline_seconds
        record["mb_per_second_pipeline"] = size_bytes / 1e6 / run.pipeline_seconds
    if topic_count is not None:
        accounted = topic_count.distinct_keys + run.summary["dead_letters"] + run.summary["skipped"]
        record["topic_messages"] = topic_count.messages
        record["topic_distinct_keys"] = topic_count.distinct_keys
        record["dropped"] = lines - accounted
        record["no_record_dropped"] = (accounted == lines and run.summary["balanced"]
                                       and topic_count.distinct_keys == run.summary["published"])
    return record


def _rounded(value):
    return None if value is None else round(value, 3)


def _loop_record(run: baselines.LoopRun) -> dict:
    return {"lines": run.lines, "produced": run.produced, "rejected": run.rejected,
            "seconds": round(run.seconds, 3), "lines_per_second": run.lines / run.seconds,
            "mb_per_second": run.size_bytes / 1e6 / run.seconds}


def _median(records: list[dict], field: str):
    values = [record[field] for record in records if record.get(field) is not None]
    return statistics.median(values) if values else None


def measure_publish(context, input_file) -> dict:
    """Run the baselines and the publish job `context.repeat` times on `input_file`; return the figure."""
    bootstrap = context.broker.bootstrap_servers
    runs = {"raw_produce": [], "single_process": [], "publish_job": []}

    for repetition in range(1, context.repeat + 1):
        _LOGGER.info("Publish figure, repetition %d of %d", repetition, context.repeat)

        topic = context.new_topic("baseline-raw")
        loop = baselines.raw_produce(input_file.path, bootstrap, topic)
        _LOGGER.info("Baseline 1 (raw produce): %d lines in %.2f s", loop.lines, loop.seconds)
        runs["raw_produce"].append(_loop_record(loop))
        delete_topics(bootstrap, [topic])

        topic = context.new_topic("baseline-single")
        loop = baselines.single_process(input_file.path, bootstrap, topic)
        _LOGGER.info("Baseline 2 (single process): %d lines in %.2f s", loop.lines, loop.seconds)
        runs["single_process"].append(_loop_record(loop))
        delete_topics(bootstrap, [topic])

        topic, dead_letter_topic = context.new_topic("publish-events"), context.new_topic("publish-dlq")
        job = run_publish_job(repo_root=context.repo_root, input_path=input_file.path, bootstrap_servers=bootstrap,
                              topic=topic, dead_letter_topic=dead_letter_topic, work_dir=context.work_dir,
                              label=f"publish-{repetition}", timeout_seconds=context.job_timeout_seconds,
                              extra_args=context.publish_args)
        counted = count_topic(bootstrap, topic, job.summary["published"])
        record = _job_record(job, input_file.size_bytes, counted)
        _LOGGER.info("Publish job: %s in %.2f s wall, %s s pipeline; topic holds %d messages, %d distinct keys",
                     job.summary, job.process.wall_seconds, record["pipeline_seconds"], counted.messages,
                     counted.distinct_keys)
        runs["publish_job"].append(record)
        delete_topics(bootstrap, [topic, dead_letter_topic])

    raw_rate = _median(runs["raw_produce"], "lines_per_second")
    single_rate = _median(runs["single_process"], "lines_per_second")
    job_pipeline_rate = _median(runs["publish_job"], "lines_per_second_pipeline")
    job_wall_rate = _median(runs["publish_job"], "lines_per_second_wall")
    result = {
        "file": {"path": input_file.path, "lines": input_file.lines, "size_bytes": input_file.size_bytes},
        "repeat": context.repeat,
        "runs": runs,
        "median": {
            "raw_produce_lines_per_second": raw_rate,
            "raw_produce_mb_per_second": _median(runs["raw_produce"], "mb_per_second"),
            "single_process_lines_per_second": single_rate,
            "single_process_mb_per_second": _median(runs["single_process"], "mb_per_second"),
            "job_lines_per_second_pipeline": job_pipeline_rate,
            "job_mb_per_second_pipeline": _median(runs["publish_job"], "mb_per_second_pipeline"),
            "job_lines_per_second_wall": job_wall_rate,
            "job_mb_per_second_wall": _median(runs["publish_job"], "mb_per_second_wall"),
            "job_wall_seconds": _median(runs["publish_job"], "wall_seconds"),
            "job_startup_seconds": _median(runs["publish_job"], "startup_seconds"),
            "job_pipeline_seconds": _median(runs["publish_job"], "pipeline_seconds"),
        },
        "no_record_dropped": all(record.get("no_record_dropped") for record in runs["publish_job"]),
    }
    median = result["median"]
    if job_pipeline_rate and raw_rate and single_rate:
        median["ratio_to_raw_pipeline"] = job_pipeline_rate / raw_rate
        median["ratio_to_single_process_pipeline"] = job_pipeline_rate / single_rate
    median["ratio_to_raw_wall"] = job_wall_rate / raw_rate
    median["ratio_to_single_process_wall"] = job_wall_rate / single_rate
    result["targets"] = {
        "of_raw_produce": PUBLISH_TARGET_OF_RAW,
        "over_single_process": PUBLISH_TARGET_OVER_SINGLE_PROCESS,
        "met_pipeline": bool(median.get("ratio_to_raw_pipeline", 0) >= PUBLISH_TARGET_OF_RAW
                             and median.get("ratio_to_single_process_pipeline", 0)
                             >= PUBLISH_TARGET_OVER_SINGLE_PROCESS and result["no_record_dropped"]),
        "met_wall": bool(median["ratio_to_raw_wall"] >= PUBLISH_TARGET_OF_RAW
                         and median["ratio_to_single_process_wall"] >= PUBLISH_TARGET_OVER_SINGLE_PROCESS
                         and result["no_record_dropped"]),
    }
    return result


def measure_memory(context, small_file, large_file) -> dict:
    """Run the publish job once on each file, sampling its peak RSS; return the figure."""
    bootstrap = context.broker.bootstrap_servers
    result = {"runs": {}}
    for label, input_file in (("small", small_file), ("large", large_file)):
        topic, dead_letter_topic = context.new_topic(f"memory-{label}"), context.new_topic(f"memory-{label}-dlq")
        job = run_publish_job(repo_root=context.repo_root, input_path=input_file.path, bootstrap_servers=bootstrap,
                              topic=topic, dead_letter_topic=dead_letter_topic, work_dir=context.work_dir,
                              label=f"memory-{label}", timeout_seconds=context.job_timeout_seconds,
                              extra_args=context.publish_args)
        counted = count_topic(bootstrap, topic, job.summary["published"]) if context.verify_memory_runs else None
        record = _job_record(job, input_file.size_bytes, counted)
        record["file"] = {"path": input_file.path, "lines": input_file.lines, "size_bytes": input_file.size_bytes}
        record["rss_samples"] = [(round(seconds, 2), rss) for seconds, rss in job.process.rss_samples]
        record["broker_rss_bytes_after"] = context.broker_rss_bytes()
        _LOGGER.info("Memory run on %.0f MB: peak RSS %.0f MB, wall %.1f s", input_file.size_mb,
                     job.process.peak_rss_bytes / 1e6, job.process.wall_seconds)
        result["runs"][label] = record
        delete_topics(bootstrap, [topic, dead_letter_topic])

    small_peak = result["runs"]["small"]["peak_rss_bytes"]
    large_peak = result["runs"]["large"]["peak_rss_bytes"]
    result["ratio"] = large_peak / small_peak if small_peak else None
    result["target_ratio"] = MEMORY_TARGET_RATIO
    result["met"] = bool(result["ratio"] is not None and result["ratio"] <= MEMORY_TARGET_RATIO)
    return result
