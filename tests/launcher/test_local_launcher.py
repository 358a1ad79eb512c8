"""The local launcher: one child process per job name, claimed by an O_EXCL marker."""

import json
import sys
import threading

import pytest

from function_launcher.config import ConfigError, load_config
from function_launcher.launch import LaunchRequest, LaunchStatus, TransientLaunchError
from function_launcher.local_launcher import JobFiles, LocalLauncher, wait_for_job
from tests.launcher.conftest import GENERATION, RESULT_NAME, RESULTS_BUCKET

REQUEST = LaunchRequest(job_name="publish-20261130-0123456789", bucket=RESULTS_BUCKET, object_name=RESULT_NAME,
                        generation=GENERATION, batch_date="2026-11-30")

# Stands in for the publish job: records its options in the summary file, then
# exits with the code given as its first argument.
RECORDING_JOB = (
    "import json, sys\n"
    "options = sys.argv[2:]\n"
    "summary = options[options.index('--summary_json') + 1]\n"
    "json.dump(options, open(summary, 'w'))\n"
    "print('job ran')\n"
    "sys.exit(int(sys.argv[1]))\n"
)


def make_launcher(tmp_path, exit_code=0, **settings):
    environment = {"RESULTS_BUCKET": RESULTS_BUCKET, "LAUNCHER": "local",
                   "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "LOCAL_STATE_DIR": str(tmp_path / "state")}
    environment.update(settings)
    return LocalLauncher(load_config(environment), job_command=[sys.executable, "-c", RECORDING_JOB, str(exit_code)])


def test_local_launch_started(tmp_path):
    launcher = make_launcher(tmp_path)
    result = launcher.launch(REQUEST)
    assert result.status is LaunchStatus.STARTED
    assert wait_for_job(launcher.state_dir, REQUEST.job_name, 30) == 0


def test_local_launch_job_options(tmp_path):
    launcher = make_launcher(tmp_path, KAFKA_CONFIG='{"client.id": "local"}', DEAD_LETTER_PATH="/tmp/dead")
    launcher.launch(REQUEST)
    wait_for_job(launcher.state_dir, REQUEST.job_name, 30)
    files = JobFiles.of(launcher.state_dir, REQUEST.job_name)
    assert json.loads(files.summary.read_text()) == [
        "--input", f"gs://{RESULTS_BUCKET}/{RESULT_NAME}",
        "--source_generation", GENERATION,
        "--bootstrap_servers", "127.0.0.1:9092",
        "--topic", "batch-job-results",
        "--dead_letter_topic", "batch-job-results-dlq",
        "--kafka_config", '{"client.id": "local"}',
        "--dead_letter_path", "/tmp/dead",
        "--summary_json", str(files.summary),
    ]


def test_local_launch_marker_content(tmp_path):
    launcher = make_launcher(tmp_path)
    result = launcher.launch(REQUEST)
    wait_for_job(launcher.state_dir, REQUEST.job_name, 30)
    marker = json.loads(JobFiles.of(launcher.state_dir, REQUEST.job_name).marker.read_text())
    assert marker["pid"] == int(result.job_id)
    assert marker["generation"] == GENERATION


def test_local_launch_log_written(tmp_path):
    launcher = make_launcher(tmp_path)
    launcher.launch(REQUEST)
    wait_for_job(launcher.state_dir, REQUEST.job_name, 30)
    assert "job ran" in JobFiles.of(launcher.state_dir, REQUEST.job_name).log.read_text()


def test_local_launch_failed_exit_recorded(tmp_path):
    launcher = make_launcher(tmp_path, exit_code=3)
    launcher.launch(REQUEST)
    assert wait_for_job(launcher.state_dir, REQUEST.job_name, 30) == 3


def test_local_second_launch_duplicate(tmp_path):
    launcher = make_launcher(tmp_path)
    launcher.launch(REQUEST)
    assert launcher.launch(REQUEST).status is LaunchStatus.DUPLICATE


def test_local_duplicate_across_launchers(tmp_path):
    make_launcher(tmp_path).launch(REQUEST)
    assert make_launcher(tmp_path).launch(REQUEST).status is LaunchStatus.DUPLICATE


def test_local_ten_concurrent_launches_start_one(tmp_path):
    launcher = make_launcher(tmp_path)
    barrier = threading.Barrier(10)
    statuses = []

    def deliver():
        barrier.wait()
        statuses.append(launcher.launch(REQUEST).status)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for_job(launcher.state_dir, REQUEST.job_name, 30)

    assert statuses.count(LaunchStatus.STARTED) == 1
    assert statuses.count(LaunchStatus.DUPLICATE) == 9
    assert JobFiles.of(launcher.state_dir, REQUEST.job_name).log.read_text().count("job ran") == 1


def test_local_start_failure_releases_claim(tmp_path):
    config = load_config({"RESULTS_BUCKET": RESULTS_BUCKET, "LAUNCHER": "local",
                          "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "LOCAL_STATE_DIR": str(tmp_path)})
    launcher = LocalLauncher(config, job_command=[str(tmp_path / "no-such-python")])
    with pytest.raises(TransientLaunchError):
        launcher.launch(REQUEST)
    assert not JobFiles.of(tmp_path, REQUEST.job_name).marker.exists()


def test_local_needs_repository(tmp_path):
    config = load_config({"RESULTS_BUCKET": RESULTS_BUCKET, "LAUNCHER": "local",
                          "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "LOCAL_STATE_DIR": str(tmp_path)})
    with pytest.raises(ConfigError) as raised:
        LocalLauncher(config, project_root=tmp_path)
    assert "LAUNCHER=dataflow" in str(raised.value)


def test_wait_for_job_timeout(tmp_path):
    with pytest.raises(TimeoutError):
        wait_for_job(tmp_path, "publish-never-started", 0.2)
