"""The local automation command, run as a user would run it."""

import pathlib
import subprocess
import sys

import pytest

from tests.conftest import CASES_DIR

pytestmark = pytest.mark.slow

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
OBJECT_NAME = "results/2026/11/30/prediction-model-2026-11-30T09:00:00.000000Z/predictions.jsonl"


def run_automation(tmp_path, *arguments):
    return subprocess.run([sys.executable, "-m", "localdev.automation", "--work-dir", str(tmp_path), *arguments],
                          cwd=REPO_ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=400)


def test_automation_shows_findings(tmp_path):
    # fenced-verdict.jsonl: two events, one positive verdict, one finding.
    completed = run_automation(tmp_path, "--input", str(CASES_DIR / "fenced-verdict.jsonl"),
                               "--object-name", OBJECT_NAME, "--idle-seconds", "10")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "findings read back: 1" in completed.stdout
    assert "  finding " in completed.stdout


def test_automation_rejects_ignored_name(tmp_path):
    completed = run_automation(tmp_path, "--object-name", "results/2026/11/30/predictions.jsonl")
    assert completed.returncode == 2
    assert "would be ignored by the function" in completed.stderr
