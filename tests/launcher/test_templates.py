"""Flex Template files: parameters and pipeline options match both ways; Dockerfiles point at real files.

Template parameter names are pipeline option names. Every parameter must be
an option, and every option must be a parameter unless it is listed below as
deliberately not one.
"""

import argparse
import json
import pathlib
import re

import pytest
from apache_beam.options.pipeline_options import KafkaStreamsRunnerOptions

from function_launcher.config import load_config
from function_launcher.launch import LaunchRequest, publish_parameters
from pipelines.common_options import KafkaOptions
from pipelines.extract_injections import ExtractInjectionsOptions
from pipelines.publish_results import PublishResultsOptions

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_ROOT / "templates"

# Options that are deliberately not template parameters, with the reason.
NOT_PARAMETERS = {
    "publish_results": {
        "summary_json": "a local file on the launcher VM, which nobody reads",
    },
    "extract_injections": {
        "summary_json": "a local file on the launcher VM, which nobody reads",
        "stop_after_idle_seconds": "ends the read for bounded local runs; the streaming job runs until drained",
        "max_records": "ends the read for bounded local runs; the streaming job runs until drained",
    },
}

OPTION_CLASSES = {
    "publish_results": (PublishResultsOptions, KafkaOptions),
    "extract_injections": (ExtractInjectionsOptions, KafkaOptions),
}

TEMPLATES = sorted(OPTION_CLASSES)


def option_actions(template: str) -> dict[str, argparse.Action]:
    """Return the pipeline's own options by name, plus Beam's --bootstrap_servers, which both read."""
    parser = argparse.ArgumentParser(add_help=False)
    for options_class in OPTION_CLASSES[template]:
        options_class._add_argparse_args(parser)
    actions = {action.dest: action for action in parser._actions}
    beam_parser = argparse.ArgumentParser(add_help=False)
    KafkaStreamsRunnerOptions._add_argparse_args(beam_parser)
    actions["bootstrap_servers"] = next(
        action for action in beam_parser._actions if action.dest == "bootstrap_servers")
    return actions


def metadata(template: str) -> dict:
    return json.loads((TEMPLATES_DIR / template / "metadata.json").read_text(encoding="utf-8"))


def parameters(template: str) -> dict[str, dict]:
    return {parameter["name"]: parameter for parameter in metadata(template)["parameters"]}


@pytest.mark.parametrize("template", TEMPLATES)
def test_parameters_are_options(template):
    assert set(parameters(template)) - set(option_actions(template)) == set()


@pytest.mark.parametrize("template", TEMPLATES)
def test_options_are_parameters(template):
    missing = set(option_actions(template)) - set(parameters(template)) - set(NOT_PARAMETERS[template])
    assert missing == set()


@pytest.mark.parametrize("template", TEMPLATES)
def test_excluded_options_exist(template):
    assert set(NOT_PARAMETERS[template]) <= set(option_actions(template))


@pytest.mark.parametrize("template", TEMPLATES)
def test_excluded_options_not_parameters(template):
    assert set(NOT_PARAMETERS[template]) & set(parameters(template)) == set()


@pytest.mark.parametrize("template", TEMPLATES)
def test_required_options_required_parameters(template):
    required = {name for name, action in option_actions(template).items() if action.required}
    optional_parameters = {name for name, parameter in parameters(template).items() if parameter["isOptional"]}
    assert required & optional_parameters == set()


@pytest.mark.parametrize("template", TEMPLATES)
def test_metadata_name_is_folder(template):
    assert metadata(template)["name"] == template


@pytest.mark.parametrize("template", TEMPLATES)
def test_metadata_parameter_fields(template):
    for parameter in metadata(template)["parameters"]:
        assert {"name", "label", "helpText", "isOptional"} <= set(parameter), parameter["name"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_metadata_regexes_compile(template):
    for parameter in metadata(template)["parameters"]:
        for pattern in parameter.get("regexes", []):
            re.compile(pattern)


def test_launcher_parameters_declared():
    config = load_config({"RESULTS_BUCKET": "results-test", "LAUNCHER": "local", "KAFKA_BOOTSTRAP_SERVERS": "b:9092",
                          "KAFKA_CONFIG": "{}", "KAFKA_CONFIG_SECRET": "projects/p/secrets/s/versions/1",
                          "DEAD_LETTER_PATH": "gs://dead/letters/"})
    request = LaunchRequest("publish-x", "results-test", "results/2026/11/30/prediction-model-x/predictions.jsonl",
                            "1", "2026-11-30")
    assert set(publish_parameters(config, request)) - set(parameters("publish_results")) == set()


def test_launcher_values_match_regexes():
    config = load_config({"RESULTS_BUCKET": "results-test", "LAUNCHER": "local", "KAFKA_BOOTSTRAP_SERVERS": "b:9092",
                          "KAFKA_CONFIG_SECRET": "projects/p/secrets/s/versions/1",
                          "DEAD_LETTER_PATH": "gs://dead/letters/"})
    request = LaunchRequest("publish-x", "results-test", "results/2026/11/30/prediction-model-x/predictions.jsonl",
                            "1796416713031548", "2026-11-30")
    declared = parameters("publish_results")
    for name, value in publish_parameters(config, request).items():
        for pattern in declared[name].get("regexes", []):
            assert re.search(pattern, value), f"{name}={value!r} does not match {pattern}"


def dockerfile(template: str) -> str:
    return (TEMPLATES_DIR / template / "Dockerfile").read_text(encoding="utf-8")


@pytest.mark.parametrize("template", TEMPLATES)
def test_dockerfile_runs_pipeline_module(template):
    match = re.search(r"^ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/template/(\S+)$", dockerfile(template), re.MULTILINE)
    assert match.group(1) == f"pipelines/{template}.py"
    assert (REPO_ROOT / match.group(1)).is_file()


@pytest.mark.parametrize("template", TEMPLATES)
def test_dockerfile_copies_existing_paths(template):
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile(template), re.MULTILINE)
    sources = [source for line in copied for source in line.split()]
    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), source


@pytest.mark.parametrize("template", TEMPLATES)
def test_dockerfile_beam_version_pinned(template):
    setup_pin = re.search(r'"apache-beam\[gcp\]==([0-9.]+)"', (REPO_ROOT / "setup.py").read_text()).group(1)
    assert f"ARG BEAM_VERSION={setup_pin}" in dockerfile(template)
