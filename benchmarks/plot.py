"""The benchmark plot: one panel per measured figure, in one PNG."""

import matplotlib

matplotlib.use("Agg")  # Agg writes image files and needs no display.

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def _publish_panel(axes, figure: dict) -> None:
    median = figure["median"]
    labels = ["baseline 1\nraw produce", "baseline 2\nsingle process", "publish job\npipeline time",
              "publish job\nwall time"]
    values = [median["raw_produce_lines_per_second"], median["single_process_lines_per_second"],
              median["job_lines_per_second_pipeline"] or 0, median["job_lines_per_second_wall"]]
    bars = axes.bar(labels, values, color=["#8c8c8c", "#bdbdbd", "#1f77b4", "#6baed6"])
    axes.bar_label(bars, labels=[f"{value:,.0f}" for value in values], fontsize=8)
    raw = median["raw_produce_lines_per_second"]
    single = median["single_process_lines_per_second"]
    axes.axhline(raw * figure["targets"]["of_raw_produce"], color="#d62728", linestyle="--", linewidth=1,
                 label=f"{figure['targets']['of_raw_produce']:.0%} of baseline 1")
    axes.axhline(single * figure["targets"]["over_single_process"], color="#ff7f0e", linestyle=":", linewidth=1,
                 label=f"{figure['targets']['over_single_process']:g}x baseline 2")
    axes.set_ylabel("lines per second")
    axes.set_title(f"Publish, {figure['file']['lines']:,} lines (median of {figure['repeat']})", fontsize=10)
    axes.tick_params(axis="x", labelsize=8)
    axes.legend(fontsize=8)


def _memory_panel(axes, figure: dict) -> None:
    for label, color in (("small", "#6baed6"), ("large", "#08519c")):
        record = figure["runs"][label]
        samples = record["rss_samples"]
        axes.plot([seconds for seconds, _ in samples], [rss / 1e6 for _, rss in samples], color=color,
                  label=f"{record['file']['size_bytes'] / 1e6:,.0f} MB file, peak {record['peak_rss_bytes'] / 1e6:,.0f} MB")
    axes.set_xlabel("seconds since job start")
    axes.set_ylabel("RSS of process tree (MB)")
    axes.set_title(f"Publish job memory, peak ratio {figure['ratio']:.2f}", fontsize=10)
    axes.legend(fontsize=8)


def _extract_throughput_panel(axes, figure: dict) -> None:
    throughput = figure["throughput"]
    samples = throughput["commit_samples"]
    axes.plot([seconds for seconds, _ in samples], [offset for _, offset in samples], marker=".", color="#2ca02c")
    axes.set_xlabel("seconds since job start")
    axes.set_ylabel("events committed")
    rate = throughput["events_per_second"]
    rate_text = "n/a" if rate is None else f"{rate:,.0f}"
    axes.set_title(f"Extraction throughput: {rate_text} events/s (target {figure['targets']['events_per_second']:,})",
                   fontsize=10)


def _extract_latency_panel(axes, figure: dict) -> None:
    latency = figure["latency"]
    series = latency["series"]
    axes.scatter([moment for moment, _ in series], [value for _, value in series], s=3, color="#9467bd")
    if latency["p99_seconds"] is not None:
        axes.axhline(latency["p99_seconds"], color="#9467bd", linestyle="--", linewidth=1,
                     label=f"p99 {latency['p99_seconds']:.2f} s")
    axes.axhline(figure["targets"]["p99_seconds"], color="#d62728", linestyle=":", linewidth=1,
                 label=f"target p99 {figure['targets']['p99_seconds']:g} s")
    axes.set_xlabel("seconds since the first measured event")
    axes.set_ylabel("event acknowledged to finding read (s)")
    axes.set_title(f"Extraction latency at {latency['rate_requested']:,.0f} events/s", fontsize=10)
    axes.legend(fontsize=8)


def _launch_panel(axes, figure: dict) -> None:
    runs = figure["runs"]
    labels = [str(index) for index in range(1, len(runs) + 1)]
    first_log = [run["job_publishing_log_seconds"] or 0 for run in runs]
    first_event = [run["first_event_seconds"] or 0 for run in runs]
    axes.bar(labels, first_event, color="#ff7f0e", label="first event on Kafka")
    axes.bar(labels, first_log, color="#fdae6b", label="job's first log line")
    axes.set_xlabel("repetition")
    axes.set_ylabel("seconds after the finalize event")
    axes.set_title("Finalize event to first event (local launcher)", fontsize=10)
    axes.legend(fontsize=8)


def write_plot(results: dict, path: str) -> None:
    """Draw every measured figure as a panel and save the PNG at `path`."""
    figures = results["figures"]
    panels = []
    if "publish" in figures:
        panels.append((_publish_panel, figures["publish"]))
    if "memory" in figures:
        panels.append((_memory_panel, figures["memory"]))
    if "extract" in figures:
        panels.append((_extract_throughput_panel, figures["extract"]))
        panels.append((_extract_latency_panel, figures["extract"]))
    if "launch" in figures:
        panels.append((_launch_panel, figures["launch"]))
    if not panels:
        return

    columns = min(2, len(panels))
    rows = (len(panels) + columns - 1) // columns
    canvas, axes_grid = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.2 * rows), squeeze=False)
    for (draw, figure), axes in zip(panels, axes_grid.flat):
        draw(axes, figure)
    for axes in list(axes_grid.flat)[len(panels):]:
        axes.set_visible(False)
    machine = results["machine"]
    canvas.suptitle(f"{machine['cpu_model']}, {machine['logical_cpus']} CPUs, {machine['memory_gib']} GiB, "
                    f"{machine['date']}", fontsize=9)
    canvas.tight_layout()
    canvas.savefig(path, dpi=110)
    plt.close(canvas)
