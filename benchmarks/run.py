"""Measure the speed and memory figures of the project in one run, and write docs/benchmarks.md.

Usage (from the repository root, after `pip install -e .[bench]`):
    python -m benchmarks.run                          # every figure at full size
    python -m benchmarks.run --only publish,memory    # some figures
    python -m benchmarks.run --lines 20000 --memory-small-mb 20 --memory-large-mb 200 \
        --output /tmp/benchmarks.md --plot /tmp/benchmarks.png   # a quick check at small sizes

Every figure runs against one local Tansu broker started by this script on a
free loopback port, and on files generated once into `--data-dir` (reused by
later runs). The figures are:

* `publish`: the publish job on a file of `--lines` lines against baseline 1
  (a raw confluent-kafka produce loop) and baseline 2 (a single-process
  parse, validate, wrap and produce loop), see `benchmarks.publish_figures`;
* `memory`: peak RSS of the publish job on a file of `--memory-large-mb`
  against one of `--memory-small-mb`;
* `extract`: the extraction job's throughput and its end-to-end latency at
  a steady input rate, see `benchmarks.extract_figures`;
* `launch`: time from a finalize event reaching the function to the first
  event on Kafka with the local launcher, see `benchmarks.launch_figure`.

The script writes the Markdown report, the plot and a JSON file of every
measurement. Each output records the machine, the date and the exact command.
It stops every process it started when it ends or fails.
"""

import argparse
import itertools
import json
import logging
import os
import shlex
import sys
import time
import uuid

import psutil

from benchmarks import data, machine
from localdev.broker import LocalBroker

_LOGGER = logging.getLogger(__name__)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = ("publish", "memory", "extract", "launch")


class Context:
    """Shared state of one benchmark run: the broker, the folders and the settings."""

    def __init__(self, args, broker: LocalBroker):
        self.args = args
        self.broker = broker
        self.repo_root = REPO_ROOT
        self.work_dir = os.path.abspath(args.work_dir)
        self.data_dir = os.path.abspath(args.data_dir)
        self.repeat = args.repeat
        self.job_timeout_seconds = args.job_timeout_seconds
        self.publish_args = tuple(shlex.split(args.publish_args))
        self.extract_args = tuple(shlex.split(args.extract_args))
        self.verify_memory_runs = not args.skip_memory_count
        self.partitions = args.partitions
        self._run_id = uuid.uuid4().hex[:6]
        self._topic_numbers = itertools.count(1)

    def new_topic(self, name: str, partitions: int | None = None) -> str:
        """Create a topic with a name unique to this run, and return the name."""
        topic = f"bench-{self._run_id}-{next(self._topic_numbers)}-{name}"
        self.broker.create_topics([topic], partitions=partitions or self.partitions)
        return topic

    def broker_rss_bytes(self) -> int:
        """Return the broker process's RSS; Tansu keeps every message in memory until its topic is deleted."""
        try:
            return psutil.Process(self.broker.process.pid).memory_info().rss
        except psutil.NoSuchProcess:
            return 0


def parse_arguments(argv):
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(description="Measure the project's speed and memory figures on a local broker.")
    parser.add_argument("--only", default=",".join(FIGURES),
                        help=f"Comma-separated figures to measure, from {', '.join(FIGURES)}. Default: all.")

    parser.add_argument("--lines", type=int, default=200_000, help="Lines of the throughput file.")
    parser.add_argument("--memory-small-mb", type=float, default=200,
                        help="Size in MB (10^6 bytes) of the smaller file of the memory figure.")
    parser.add_argument("--memory-large-mb", type=float, default=2000,
                        help="Size in MB (10^6 bytes) of the larger file of the memory figure.")
    parser.add_argument("--repeat", type=int, default=3,
                        help="Repetitions of each baseline and of the publish job; the median is reported.")

    parser.add_argument("--partitions", type=int, default=1, help="Partitions of every topic the benchmark creates.")
    parser.add_argument("--publish-args", default="",
                        help="Extra arguments for every publish job run, as one shell-quoted string after '=', "
                             "for example --publish-args='--direct_num_workers=2 --direct_running_mode=multi_processing'.")
    parser.add_argument("--skip-memory-count", action="store_true",
                        help="Do not read the memory runs' topics back to count their events.")

    parser.add_argument("--extract-events", type=int, default=200_000,
                        help="Events preloaded on the input topic for the extraction throughput figure.")
    parser.add_argument("--extract-rate", type=float, default=5000,
                        help="Events per second produced for the extraction latency figure.")
    parser.add_argument("--extract-seconds", type=float, default=60,
                        help="Seconds of steady input for the extraction latency figure.")
    parser.add_argument("--extract-args", default="",
                        help="Extra arguments for every extraction job run, as one shell-quoted string after '=', "
                             "for example --extract-args='--max_bundle_records=2000'.")

    parser.add_argument("--launch-repeat", type=int, default=3, help="Repetitions of the launch figure.")
    parser.add_argument("--launch-lines", type=int, default=10_000,
                        help="Lines of the result file uploaded for the launch figure.")

    parser.add_argument("--data-dir", default="/tmp/batch-results-benchmark/data",
                        help="Folder for the generated input files; files are reused when they match.")
    parser.add_argument("--work-dir", default="/tmp/batch-results-benchmark/work",
                        help="Folder for job logs, summaries and the broker log.")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "docs", "benchmarks.md"),
                        help="Path of the Markdown report.")
    parser.add_argument("--plot", default=os.path.join(REPO_ROOT, "docs", "benchmarks.png"),
                        help="Path of the plot (PNG), linked from the report.")
    parser.add_argument("--results-json", default=None,
                        help="Path of the JSON file of every measurement; default: results.json in --work-dir.")
    parser.add_argument("--job-timeout-seconds", type=float, default=1800,
                        help="Seconds after which a job process is killed and the run fails.")

    args = parser.parse_args(argv)
    args.figures = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.figures) - set(FIGURES))
    if unknown:
        parser.error(f"--only names unknown figures {', '.join(unknown)}; choose from {', '.join(FIGURES)}.")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1.")
    return args


def command_line(argv) -> str:
    """Return the command that reproduces this run, as typed from the repository root."""
    return shlex.join([os.path.relpath(sys.executable) if sys.executable.startswith(REPO_ROOT) else sys.executable,
                       "-m", "benchmarks.run", *argv])


def run_figures(context: Context, results: dict) -> None:
    """Measure each requested figure and store it in `results["figures"]` as soon as it is done."""
    from benchmarks import publish_figures

    args = context.args
    figures = results["figures"]
    if "publish" in args.figures:
        input_file = data.ensure_file(context.data_dir, f"lines-{args.lines}", lines=args.lines)
        figures["publish"] = publish_figures.measure_publish(context, input_file)
    if "memory" in args.figures:
        small = data.ensure_file(context.data_dir, f"mb-{args.memory_small_mb:g}",
                                 size_bytes=int(args.memory_small_mb * 1e6))
        large = data.ensure_file(context.data_dir, f"mb-{args.memory_large_mb:g}",
                                 size_bytes=int(args.memory_large_mb * 1e6))
        figures["memory"] = publish_figures.measure_memory(context, small, large)
    if "extract" in args.figures:
        from benchmarks import extract_figures

        template_file = data.ensure_file(context.data_dir, "lines-2000", lines=2000)
        figures["extract"] = extract_figures.measure_extraction(context, template_file.path)
    if "launch" in args.figures:
        from benchmarks import launch_figure

        launch_file = data.ensure_file(context.data_dir, f"lines-{args.launch_lines}", lines=args.launch_lines)
        figures["launch"] = launch_figure.measure_launch(context, launch_file.path)


def main(argv=None) -> int:
    """Command-line entry point; returns 0 when every requested figure was measured."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.makedirs(args.work_dir, exist_ok=True)
    os.makedirs(args.data_dir, exist_ok=True)
    results_path = args.results_json or os.path.join(args.work_dir, "results.json")

    results = {"command": command_line(argv), "machine": machine.describe(REPO_ROOT), "figures": {},
               "settings": {name: value for name, value in vars(args).items() if name != "figures"}}
    started = time.monotonic()
    broker = LocalBroker(log_path=os.path.join(os.path.abspath(args.work_dir), "tansu.log"))
    try:
        with broker:
            run_figures(Context(args, broker), results)
    finally:
        results["total_seconds"] = round(time.monotonic() - started, 1)
        results["machine"]["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
        with open(results_path, "w", encoding="utf-8") as stream:
            json.dump(results, stream, indent=1)
        _LOGGER.info("Wrote %s", results_path)

    from benchmarks import report

    report.write_report(results, args.output, args.plot)
    _LOGGER.info("Wrote %s and %s", args.output, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
