"""Wiring between terraform/ and the code it deploys.

The names checked here are the contracts between the configuration and the
Python code: the Eventarc trigger, the function's environment variables, and
the Flex Template parameters of both pipelines.
"""

import ast
import importlib
import json
import sys

import pytest

from conftest import REPOSITORY_ROOT, TerraformConfig

FINALIZED_EVENT_TYPE = "google.cloud.storage.object.v1.finalized"

# Environment variables set on the function: every name function_launcher/config.py
# reads, except the local-only ones below.
FUNCTION_ENVIRONMENT_VARIABLES = frozenset({
    "RESULTS_BUCKET",
    "LAUNCHER",
    "GCP_PROJECT",
    "DATAFLOW_REGION",
    "TEMPLATE_GCS_PATH",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC",
    "DEAD_LETTER_TOPIC",
    "KAFKA_CONFIG_SECRET",
    "DATAFLOW_SERVICE_ACCOUNT",
    "DATAFLOW_TEMP_LOCATION",
    "DATAFLOW_STAGING_LOCATION",
    "DATAFLOW_NETWORK",
    "DATAFLOW_SUBNETWORK",
    "DATAFLOW_MAX_WORKERS",
    "DEAD_LETTER_PATH",
    "KAFKA_CONFIG",
    "DATAFLOW_SDK_CONTAINER_IMAGE",
})

# Variables function_launcher/config.py reads that production leaves unset.
LOCAL_ONLY_ENVIRONMENT_VARIABLES = frozenset({
    "DATAFLOW_API_ENDPOINT",  # points the launcher at a local test server
    "LOCAL_STATE_DIR",  # used by the local DirectRunner launcher only
})

# Pipeline options, which are also the Flex Template parameter names.
PUBLISH_RESULTS_OPTIONS = frozenset({
    "input",
    "source_generation",
    "bootstrap_servers",
    "topic",
    "dead_letter_topic",
    "dead_letter_path",
    "kafka_config",
    "kafka_config_secret",
    "max_message_bytes",
})
EXTRACT_INJECTIONS_OPTIONS = frozenset({
    "bootstrap_servers",
    "input_topic",
    "output_topic",
    "dead_letter_topic",
    "consumer_group",
    "kafka_config",
    "kafka_config_secret",
})

# Pipeline option -> Kafka topic variable that the job must pass to it.
EXTRACT_TOPIC_PARAMETERS = {
    "input_topic": "${var.kafka_topics.batch_results}",
    "output_topic": "${var.kafka_topics.prompt_injections}",
    "dead_letter_topic": "${var.kafka_topics.extract_dead_letter}",
}


def import_repository_module(module_name: str):
    """Import a module of this repository, or skip the test if its file is absent.

    Import errors of an existing module are not caught: they fail the test.
    """
    module_path = REPOSITORY_ROOT.joinpath(*module_name.split(".")).with_suffix(".py")
    if not module_path.exists():
        pytest.skip(f"{module_path.relative_to(REPOSITORY_ROOT)} does not exist yet")
    if str(REPOSITORY_ROOT) not in sys.path:
        sys.path.insert(0, str(REPOSITORY_ROOT))
    return importlib.import_module(module_name)


def read_template_metadata(template_name: str) -> dict:
    """Read templates/<name>/metadata.json, or skip the test if it is absent."""
    metadata_path = REPOSITORY_ROOT / "templates" / template_name / "metadata.json"
    if not metadata_path.exists():
        pytest.skip(f"{metadata_path.relative_to(REPOSITORY_ROOT)} does not exist yet")
    return json.loads(metadata_path.read_text(encoding="utf-8"))


def metadata_parameter_names(metadata: dict) -> set[str]:
    return {parameter["name"] for parameter in metadata.get("parameters", [])}


def known_pipeline_options() -> set[str]:
    """Return every option name Beam accepts, given the modules imported so far.

    Call it after importing the pipeline module, so that its classes count.
    Beam parses the options of all imported PipelineOptions subclasses
    together, so this includes Beam's own options: the pipelines read
    --bootstrap_servers from Beam's KafkaStreamsRunnerOptions, for example.
    The arguments are collected without parsing, because parsing would reject
    the missing required options.
    """
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False, conflict_handler="resolve")
    pending = [PipelineOptions]
    seen = set()
    while pending:
        options_class = pending.pop()
        if options_class in seen:
            continue
        seen.add(options_class)
        options_class._add_argparse_args(parser)
        pending.extend(options_class.__subclasses__())
    return {action.dest for action in parser._actions if action.dest != "help"}


def required_pipeline_options(module) -> set[str]:
    """Return the required options of the PipelineOptions classes the module uses.

    Only classes found in the module's namespace count, so that the required
    options of the other pipeline, imported in the same process, are left out.
    """
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    required = set()
    for value in vars(module).values():
        if not isinstance(value, type) or not issubclass(value, PipelineOptions):
            continue
        if value.__module__.startswith("apache_beam"):
            continue
        parser = _BeamArgumentParser(allow_abbrev=False)
        value._add_argparse_args(parser)
        required |= {action.dest for action in parser._actions if action.required}
    return required


def extract_parameters(terraform_config: TerraformConfig) -> dict:
    job = terraform_config.resource("google_dataflow_flex_template_job", "extract_injections")
    return job["parameters"]


def launcher_function(terraform_config: TerraformConfig) -> dict:
    return terraform_config.resource("google_cloudfunctions2_function", "launcher")


def function_environment(terraform_config: TerraformConfig) -> dict:
    return launcher_function(terraform_config)["service_config"][0]["environment_variables"]


# ---------------------------------------------------------------------------
# Eventarc trigger
# ---------------------------------------------------------------------------


def test_trigger_event_type_is_finalized(terraform_config):
    trigger = launcher_function(terraform_config)["event_trigger"][0]
    assert trigger["event_type"] == FINALIZED_EVENT_TYPE


def test_trigger_filters_on_results_bucket(terraform_config):
    trigger = launcher_function(terraform_config)["event_trigger"][0]
    filters = {event_filter["attribute"]: event_filter["value"] for event_filter in trigger["event_filters"]}
    assert filters == {"bucket": "${local.results_bucket_name}"}


def test_results_bucket_local_names_both_sources(terraform_config):
    expression = terraform_config.locals["results_bucket_name"]
    assert "google_storage_bucket.results[0].name" in expression
    assert "data.google_storage_bucket.results[0].name" in expression


def test_results_bucket_created_from_variable(terraform_config):
    bucket = terraform_config.resource("google_storage_bucket", "results")
    assert bucket["name"] == "${var.results_bucket_name}"


def test_results_bucket_read_from_variable(terraform_config):
    data_source = terraform_config.data_sources["google_storage_bucket"]["results"]
    assert data_source["name"] == "${var.results_bucket_name}"


def test_trigger_region_is_bucket_location(terraform_config):
    trigger = launcher_function(terraform_config)["event_trigger"][0]
    assert trigger["trigger_region"] == "${local.results_bucket_location}"


def test_trigger_retries_failed_events(terraform_config):
    trigger = launcher_function(terraform_config)["event_trigger"][0]
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"


def test_trigger_runs_as_trigger_account(terraform_config):
    trigger = launcher_function(terraform_config)["event_trigger"][0]
    assert trigger["service_account_email"] == "${google_service_account.trigger.email}"


# ---------------------------------------------------------------------------
# Cloud Function
# ---------------------------------------------------------------------------


def test_function_runtime_is_python311(terraform_config):
    build_config = launcher_function(terraform_config)["build_config"][0]
    assert build_config["runtime"] == "python311"


def test_function_entry_point_name(terraform_config):
    build_config = launcher_function(terraform_config)["build_config"][0]
    assert build_config["entry_point"] == "on_result_finalized"


def test_function_runs_as_launcher_account(terraform_config):
    service_config = launcher_function(terraform_config)["service_config"][0]
    assert service_config["service_account_email"] == "${google_service_account.launcher.email}"


def test_function_ingress_internal_only(terraform_config):
    service_config = launcher_function(terraform_config)["service_config"][0]
    assert service_config["ingress_settings"] == "ALLOW_INTERNAL_ONLY"


def test_function_environment_matches_contract(terraform_config):
    assert set(function_environment(terraform_config)) == FUNCTION_ENVIRONMENT_VARIABLES


def test_function_environment_matches_config_module(terraform_config):
    config = import_repository_module("function_launcher.config")
    assert hasattr(config, "ENVIRONMENT_VARIABLES"), (
        "function_launcher/config.py must define ENVIRONMENT_VARIABLES, a tuple of every name it reads"
    )
    production_names = set(config.ENVIRONMENT_VARIABLES) - LOCAL_ONLY_ENVIRONMENT_VARIABLES
    assert set(function_environment(terraform_config)) == production_names


def test_function_sets_no_local_only_variable(terraform_config):
    assert set(function_environment(terraform_config)) & LOCAL_ONLY_ENVIRONMENT_VARIABLES == set()


def test_function_kafka_config_is_non_secret_json(terraform_config):
    assert function_environment(terraform_config)["KAFKA_CONFIG"] == "${local.kafka_config_json}"
    assert terraform_config.locals["kafka_config_json"] == "${jsonencode(var.kafka_client_properties)}"


def test_function_launcher_mode_is_dataflow(terraform_config):
    assert function_environment(terraform_config)["LAUNCHER"] == "dataflow"


def test_function_template_path_is_publish_results(terraform_config):
    assert function_environment(terraform_config)["TEMPLATE_GCS_PATH"] == "${local.publish_template_gcs_path}"
    assert terraform_config.locals["publish_template_gcs_path"].endswith(
        '"gs://${local.templates_bucket_name}/templates/publish_results.json" : var.publish_template_gcs_path}'
    )


def test_function_kafka_secret_is_version_name(terraform_config):
    assert function_environment(terraform_config)["KAFKA_CONFIG_SECRET"] == "${local.kafka_config_secret_version}"
    assert terraform_config.locals["kafka_config_secret_version"] == (
        "${google_secret_manager_secret.kafka_client_config.id}/versions/latest"
    )


def test_function_topics_are_publish_topics(terraform_config):
    environment = function_environment(terraform_config)
    assert environment["KAFKA_TOPIC"] == "${var.kafka_topics.batch_results}"
    assert environment["DEAD_LETTER_TOPIC"] == "${var.kafka_topics.batch_results_dead_letter}"


def test_function_workers_run_as_dataflow_account(terraform_config):
    environment = function_environment(terraform_config)
    assert environment["DATAFLOW_SERVICE_ACCOUNT"] == "${google_service_account.dataflow.email}"


def test_function_never_receives_secret_value(terraform_config):
    function_text = json.dumps(launcher_function(terraform_config))
    assert "kafka_client_config_json" not in function_text
    assert "secret_environment_variables" not in function_text


def test_function_entry_module_defines_entry_point(terraform_config):
    module_name = terraform_config.variables["function_entry_module"]["default"]
    defining_files = [
        path for path in sorted((REPOSITORY_ROOT / "function_launcher").glob("**/*.py"))
        if "def on_result_finalized" in path.read_text(encoding="utf-8")
    ]
    if not defining_files:
        pytest.skip("no file in function_launcher/ defines on_result_finalized yet")
    module_path = REPOSITORY_ROOT.joinpath(*module_name.split(".")).with_suffix(".py")
    assert module_path in defining_files, (
        f"function_entry_module is {module_name}, but on_result_finalized is defined in "
        f"{[str(path.relative_to(REPOSITORY_ROOT)) for path in defining_files]}"
    )


def test_function_requirements_match_launcher_extra(terraform_config):
    setup_path = REPOSITORY_ROOT / "setup.py"
    if not setup_path.exists():
        pytest.skip("setup.py does not exist yet")
    extras = None
    for node in ast.walk(ast.parse(setup_path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "EXTRAS_REQUIRE" for target in node.targets
        ):
            extras = ast.literal_eval(node.value)
    assert extras is not None, "setup.py no longer assigns an EXTRAS_REQUIRE literal"
    default_requirements = terraform_config.variables["function_python_requirements"]["default"]
    assert sorted(default_requirements) == sorted(extras["launcher"])


# ---------------------------------------------------------------------------
# Flex Template parameters
# ---------------------------------------------------------------------------


def test_extract_parameters_match_contract(terraform_config):
    assert set(extract_parameters(terraform_config)) == EXTRACT_INJECTIONS_OPTIONS


@pytest.mark.parametrize("option, expected", sorted(EXTRACT_TOPIC_PARAMETERS.items()))
def test_extract_topic_parameter(terraform_config, option, expected):
    assert extract_parameters(terraform_config)[option] == expected


def test_extract_secret_parameter_is_version_name(terraform_config):
    parameters = extract_parameters(terraform_config)
    assert parameters["kafka_config_secret"] == "${local.kafka_config_secret_version}"


def test_extract_parameters_in_metadata(terraform_config):
    metadata = read_template_metadata("extract_injections")
    undeclared = set(extract_parameters(terraform_config)) - metadata_parameter_names(metadata)
    assert undeclared == set()


def test_extract_sets_required_metadata_parameters(terraform_config):
    metadata = read_template_metadata("extract_injections")
    required = {
        parameter["name"] for parameter in metadata.get("parameters", []) if not parameter.get("isOptional", False)
    }
    assert required <= set(extract_parameters(terraform_config))


def test_extract_parameters_are_pipeline_options(terraform_config):
    import_repository_module("pipelines.extract_injections")  # registers its options
    unknown = set(extract_parameters(terraform_config)) - known_pipeline_options()
    assert unknown == set()


def test_extract_sets_required_pipeline_options(terraform_config):
    module = import_repository_module("pipelines.extract_injections")
    missing = required_pipeline_options(module) - set(extract_parameters(terraform_config))
    assert missing == set()


def test_publish_metadata_declares_contract():
    metadata = read_template_metadata("publish_results")
    assert metadata_parameter_names(metadata) >= PUBLISH_RESULTS_OPTIONS


def test_publish_contract_names_are_pipeline_options():
    import_repository_module("pipelines.publish_results")  # registers its options
    unknown = PUBLISH_RESULTS_OPTIONS - known_pipeline_options()
    assert unknown == set()


def test_extract_job_runs_as_dataflow_account(terraform_config):
    job = terraform_config.resource("google_dataflow_flex_template_job", "extract_injections")
    assert job["service_account_email"] == "${google_service_account.dataflow.email}"


def test_workers_use_template_images(terraform_config):
    job = terraform_config.resource("google_dataflow_flex_template_job", "extract_injections")
    environment = function_environment(terraform_config)
    assert job["sdk_container_image"] == "${var.workers_use_template_image ? local.extract_image : null}"
    assert environment["DATAFLOW_SDK_CONTAINER_IMAGE"] == '${var.workers_use_template_image ? local.publish_image : ""}'


def test_extract_job_uses_beta_provider(terraform_config):
    job = terraform_config.resource("google_dataflow_flex_template_job", "extract_injections")
    assert job["provider"] == "google-beta"


def test_extract_job_drains_on_delete(terraform_config):
    job = terraform_config.resource("google_dataflow_flex_template_job", "extract_injections")
    assert job["on_delete"] == "drain"


def test_template_paths_name_their_pipeline(terraform_config):
    publish_path = terraform_config.locals["publish_template_gcs_path"]
    extract_path = terraform_config.locals["extract_template_gcs_path"]
    assert "publish_results.json" in publish_path
    assert "extract_injections.json" in extract_path
