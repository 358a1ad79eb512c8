"""Writing the benchmark results as Markdown and as a plot.

The report replaces only the text between `RESULTS_START` and `RESULTS_END`
in an existing file, so the hand-written parts of docs/benchmarks.md (how to
run, what the profiles showed) stay in place. A file without the markers
gets them at its end. A new file gets a title and the results.
"""

import os
import statistics

RESULTS_START = "<!-- benchmark results: start (written by python -m benchmarks.run) -->"
RESULTS_END = "<!-- benchmark results: end -->"


def _number(value, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _met(flag) -> str:
    return "met" if flag else "**missed**"


def _machine_section(results: dict) -> list[str]:
    machine = results["machine"]
    versions = machine["versions"]
    software = ", ".join(f"{name} {version}" for name, version in versions.items())
    changed = ", ".join(machine["uncommitted"]) or "none"
    return [
        f"Measured on {machine['date']} (total run time {results.get('total_seconds', 'n/a')} s).",
        "",
        "| | |",
        "| --- | --- |",
        f"| CPU | {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs ({machine['usable_cpus']} usable) |",
        f"| memory | {machine['memory_gib']} GiB |",
        f"| OS | {machine['os']} |",
        f"| load average (1, 5, 15 min) | at start {machine['load_average_at_start']}, "
        f"at end {machine.get('load_average_at_end', 'n/a')} |",
        f"| software | {software} |",
        f"| code | commit {machine['commit'] or 'unknown'}; uncommitted changes in product code: {changed} |",
        "",
        "Command, from the repository root:",
        "",
        "```bash",
        results["command"],
        "```",
        "",
    ]


def _publish_section(figure: dict) -> list[str]:
    median = figure["median"]
    file = figure["file"]
    targets = figure["targets"]
    job = figure["runs"]["publish_job"]
    runners = sorted({record["runner"] for record in job})
    lines = [
        "### Publish job against the baselines",
        "",
        f"File: {file['lines']:,} lines, {file['size_bytes'] / 1e6:,.1f} MB "
        f"({file['size_bytes'] / max(file['lines'], 1):,.0f} bytes per line). "
        + ("One repetition." if figure["repeat"] == 1 else f"Median of {figure['repeat']} interleaved repetitions."),
        "",
        "| run | lines/s | MB/s | time (s) |",
        "| --- | ---: | ---: | ---: |",
        f"| baseline 1: raw produce loop | {_number(median['raw_produce_lines_per_second'])} "
        f"| {_number(median['raw_produce_mb_per_second'], 1)} "
        f"| {_number(_median_of(figure['runs']['raw_produce'], 'seconds'), 2)} |",
        f"| baseline 2: single-process loop (json, jsonschema) | {_number(median['single_process_lines_per_second'])} "
        f"| {_number(median['single_process_mb_per_second'], 1)} "
        f"| {_number(_median_of(figure['runs']['single_process'], 'seconds'), 2)} |",
        f"| publish job, pipeline time | {_number(median['job_lines_per_second_pipeline'])} "
        f"| {_number(median['job_mb_per_second_pipeline'], 1)} | {_number(median['job_pipeline_seconds'], 2)} |",
        f"| publish job, process wall time | {_number(median['job_lines_per_second_wall'])} "
        f"| {_number(median['job_mb_per_second_wall'], 1)} | {_number(median['job_wall_seconds'], 2)} |",
        "",
        f"The job's wall time includes {_number(median['job_startup_seconds'], 2)} s from process start to its "
        "first log line (interpreter and imports). Runner reported by Beam: "
        f"{', '.join(runners) or 'unknown'}.",
        "",
        "| ratio | pipeline time | wall time | target |",
        "| --- | ---: | ---: | --- |",
        f"| job / baseline 1 | {_number(median.get('ratio_to_raw_pipeline'), 2)} "
        f"| {_number(median['ratio_to_raw_wall'], 2)} | at least {targets['of_raw_produce']} |",
        f"| job / baseline 2 | {_number(median.get('ratio_to_single_process_pipeline'), 2)} "
        f"| {_number(median['ratio_to_single_process_wall'], 2)} | at least {targets['over_single_process']} |",
        "",
        f"No record dropped (topic read back, lines read = distinct event keys + dead letters + skipped, "
        f"in every run): {'yes' if figure['no_record_dropped'] else '**no**'}. "
        f"Target on pipeline time: {_met(targets['met_pipeline'])}; on wall time: {_met(targets['met_wall'])}.",
        "",
        "| repetition | baseline 1 lines/s | baseline 2 lines/s | job lines/s (pipeline) | job wall (s) "
        "| startup (s) | events on topic | dead letters |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for index, (raw, single, record) in enumerate(zip(figure["runs"]["raw_produce"], figure["runs"]["single_process"],
                                                      job), start=1):
        lines.append(
            f"| {index} | {_number(raw['lines_per_second'])} | {_number(single['lines_per_second'])} "
            f"| {_number(record.get('lines_per_second_pipeline'))} | {_number(record['wall_seconds'], 2)} "
            f"| {_number(record['startup_seconds'], 2)} | {_number(record.get('topic_distinct_keys'))} "
            f"| {_number(record['summary']['dead_letters'])} |")
    lines.append("")
    return lines


def _median_of(records: list[dict], field: str):
    values = [record[field] for record in records if record.get(field) is not None]
    return statistics.median(values) if values else None


def _memory_section(figure: dict) -> list[str]:
    lines = [
        "### Peak memory of the publish job against file size",
        "",
        "| file | lines | peak RSS, process tree (MB) | wall (s) | lines/s (pipeline) | no record dropped |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for label in ("small", "large"):
        record = figure["runs"][label]
        dropped = record.get("no_record_dropped")
        lines.append(
            f"| {record['file']['size_bytes'] / 1e6:,.0f} MB | {record['file']['lines']:,} "
            f"| {record['peak_rss_bytes'] / 1e6:,.0f} | {record['wall_seconds']:,.1f} "
            f"| {_number(record.get('lines_per_second_pipeline'))} "
            f"| {'not checked' if dropped is None else ('yes' if dropped else '**no**')} |")
    lines += [
        "",
        f"Ratio of the peaks, large / small: {_number(figure['ratio'], 2)} "
        f"(target: at most {figure['target_ratio']}): {_met(figure['met'])}.",
        "",
    ]
    return lines


def _seconds(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f} s"


def _extract_section(figure: dict) -> list[str]:
    throughput = figure["throughput"]
    latency = figure["latency"]
    targets = figure["targets"]
    summary = throughput["summary"]
    return [
        "### Extraction job",
        "",
        f"Throughput: {throughput['events']:,} events preloaded, then consumed by one job on one worker. "
        "The rate runs from the job's first offset commit to the commit that covers every event.",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| events per second consumed | {_number(throughput['events_per_second'])} |",
        f"| findings produced (distinct, read back from the topic) | {throughput['distinct_findings_on_topic']:,} |",
        f"| findings per second | {_number(throughput['findings_per_second'])} |",
        f"| dead letters (read back) | {throughput['dead_letters_on_topic']:,} |",
        f"| job start to first commit | {_seconds(throughput['seconds_to_first_commit'])} |",
        f"| job wall time, including {throughput['idle_seconds']:g} s idle before it stops | {_seconds(throughput['job_wall_seconds'])} |",
        f"| peak RSS of the job | {throughput['job_peak_rss_bytes'] / 1e6:,.0f} MB |",
        f"| accounting balanced | {'yes' if summary.get('balanced') else '**no**'} |",
        "",
        f"Target of at least {targets['events_per_second']:,} events per second: {_met(targets['throughput_met'])}.",
        "",
        f"Latency: events produced at {latency['rate_requested']:,.0f} per second (achieved "
        f"{_number(latency['rate_achieved'])}) for {latency['seconds']} s, after a warm-up of "
        f"{latency['warm_up_seconds']} s. Latency is from the broker's acknowledgement of an event to the arrival "
        "of its finding at a consumer of the output topic.",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| events in the measured period | {latency['events']:,} |",
        f"| findings expected / measured / missing | {latency['findings_expected']:,} / "
        f"{latency['findings_measured']:,} / {latency['findings_missing']:,} |",
        f"| p50 | {_seconds(latency['p50_seconds'], 3)} |",
        f"| p99 | {_seconds(latency['p99_seconds'], 3)} |",
        f"| max | {_seconds(latency['max_seconds'], 3)} |",
        "",
        f"Target of p99 under {targets['p99_seconds']:g} s at {targets['at_rate']:,} events per second, with no "
        f"finding missing: {_met(targets['latency_met'])}.",
        "",
    ]


def _launch_section(figure: dict) -> list[str]:
    lines = [
        "### Finalize event to first event on Kafka (local launcher)",
        "",
        f"File: {figure['file']['size_bytes'] / 1e6:,.1f} MB, uploaded to fake-gcs-server before each event. "
        "Times are from posting the finalize CloudEvent to the function.",
        "",
        "| run | HTTP response | job's first log line | first event on Kafka | job exit code |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for index, run in enumerate(figure["runs"], start=1):
        lines.append(f"| {index} | {_seconds(run['http_response_seconds'], 3)} "
                     f"| {_seconds(run['job_publishing_log_seconds'])} | {_seconds(run['first_event_seconds'])} "
                     f"| {run['job_exit_code']} |")
    lines += ["", f"Median time to the first event: {_seconds(figure['median_first_event_seconds'])}.", ""]
    return lines


def results_markdown(results: dict, plot_name: str) -> str:
    """Return the Markdown of the results block, without the markers."""
    figures = results["figures"]
    lines = ["## Latest results", ""] + _machine_section(results)
    if plot_name:
        lines += [f"![Benchmark figures]({plot_name})", ""]
    if "publish" in figures:
        lines += _publish_section(figures["publish"])
    if "memory" in figures:
        lines += _memory_section(figures["memory"])
    if "extract" in figures:
        lines += _extract_section(figures["extract"])
    if "launch" in figures:
        lines += _launch_section(figures["launch"])
    missing = [name for name in ("publish", "memory", "extract", "launch") if name not in figures]
    if missing:
        lines += [f"Not measured in this run: {', '.join(missing)}.", ""]
    return "\n".join(lines)


def write_report(results: dict, output_path: str, plot_path: str) -> None:
    """Write the plot and put the results block into the Markdown file at `output_path`."""
    from benchmarks import plot

    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    plot.write_plot(results, plot_path)
    plot_name = os.path.relpath(os.path.abspath(plot_path), os.path.dirname(os.path.abspath(output_path)))
    block = f"{RESULTS_START}\n{results_markdown(results, plot_name)}\n{RESULTS_END}"

    if os.path.exists(output_path):
        with open(output_path, encoding="utf-8") as stream:
            text = stream.read()
    else:
        text = "# Benchmarks\n\n"
    start = text.find(RESULTS_START)
    end = text.find(RESULTS_END)
    if start != -1 and end > start:
        text = text[:start] + block + text[end + len(RESULTS_END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(output_path, "w", encoding="utf-8") as stream:
        stream.write(text)
