"""Static checks of terraform/: parsing, variables, buckets, Kafka and secrets."""

import re

import hcl2
import pytest

from conftest import TERRAFORM_DIR, parse_hcl_file, terraform_files, load_terraform_config

EXPECTED_TOPIC_DEFAULTS = {
    "batch_results": "batch-job-results",
    "batch_results_dead_letter": "batch-job-results-dlq",
    "prompt_injections": "prompt-injections",
    "extract_dead_letter": "extract-injections-dlq",
}

CHECKOV_SKIP_PATTERN = re.compile(r"checkov:skip=(?P<check>[A-Z0-9_]+)(?P<rest>.*)$")
# A reason is the text after "ID:". A word or two does not explain a skip.
MIN_SKIP_REASON_LENGTH = 20

CONFIG = load_terraform_config()
VARIABLE_NAMES = sorted(CONFIG.variables)
OUTPUT_NAMES = sorted(CONFIG.outputs)
BUCKET_NAMES = sorted(CONFIG.resources["google_storage_bucket"])


def checkov_skip_comments():
    """Return (file name, line number, line) for every checkov skip comment."""
    found = []
    for path in terraform_files():
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "checkov:skip=" in line:
                found.append((path.name, line_number, line.strip()))
    return found


SKIP_COMMENTS = checkov_skip_comments()


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", terraform_files(), ids=lambda path: path.name)
def test_tf_file_parses(path):
    with path.open(encoding="utf-8") as tf_file:
        parsed = hcl2.load(tf_file)
    assert parsed


def test_expected_files_exist():
    names = {path.name for path in terraform_files()}
    expected = {
        "versions.tf", "variables.tf", "storage.tf", "iam.tf", "function.tf",
        "dataflow.tf", "kafka.tf", "secrets.tf", "outputs.tf",
    }
    assert expected <= names


def test_readme_exists():
    assert (TERRAFORM_DIR / "README.md").is_file()


# ---------------------------------------------------------------------------
# Providers, variables and outputs
# ---------------------------------------------------------------------------


def test_providers_are_pinned():
    terraform_block = parse_hcl_file(TERRAFORM_DIR / "versions.tf")["terraform"][0]
    providers = terraform_block["required_providers"][0]
    assert set(providers) == {"google", "google-beta", "archive"}


def test_terraform_version_supports_write_only():
    terraform_block = parse_hcl_file(TERRAFORM_DIR / "versions.tf")["terraform"][0]
    assert terraform_block["required_version"] == ">= 1.11.0"


@pytest.mark.parametrize("name", VARIABLE_NAMES)
def test_variable_has_type(name):
    assert CONFIG.variables[name].get("type")


@pytest.mark.parametrize("name", VARIABLE_NAMES)
def test_variable_has_description(name):
    assert len(CONFIG.variables[name].get("description", "")) >= 20


@pytest.mark.parametrize("name", OUTPUT_NAMES)
def test_output_has_description(name):
    assert CONFIG.outputs[name].get("description")


@pytest.mark.parametrize("name", ["project_id", "region", "name_prefix", "results_bucket_name", "kafka_bootstrap_servers"])
def test_key_variable_is_validated(name):
    assert CONFIG.variables[name].get("validation")


def test_example_tfvars_names_declared_variables():
    example = parse_hcl_file(TERRAFORM_DIR / "terraform.tfvars.example")
    undeclared = set(example) - set(CONFIG.variables)
    assert undeclared == set()


def test_example_tfvars_sets_required_variables():
    example = parse_hcl_file(TERRAFORM_DIR / "terraform.tfvars.example")
    required = {name for name, body in CONFIG.variables.items() if "default" not in body}
    assert required <= set(example)


# ---------------------------------------------------------------------------
# checkov skips
# ---------------------------------------------------------------------------


def test_checkov_skips_exist():
    assert SKIP_COMMENTS


@pytest.mark.parametrize(
    "file_name, line_number, line", SKIP_COMMENTS, ids=[f"{name}:{number}" for name, number, _ in SKIP_COMMENTS]
)
def test_checkov_skip_has_reason(file_name, line_number, line):
    match = CHECKOV_SKIP_PATTERN.search(line)
    assert match is not None, f"{file_name}:{line_number} has a malformed skip: {line}"
    reason = match["rest"].removeprefix(":").strip()
    assert len(reason) >= MIN_SKIP_REASON_LENGTH, f"{file_name}:{line_number} skips {match['check']} without a reason"


# ---------------------------------------------------------------------------
# Buckets
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUCKET_NAMES)
def test_bucket_uniform_access(name):
    assert CONFIG.resource("google_storage_bucket", name)["uniform_bucket_level_access"] is True


@pytest.mark.parametrize("name", BUCKET_NAMES)
def test_bucket_public_access_prevented(name):
    assert CONFIG.resource("google_storage_bucket", name)["public_access_prevention"] == "enforced"


@pytest.mark.parametrize("name", BUCKET_NAMES)
def test_bucket_not_force_destroyed(name):
    assert CONFIG.resource("google_storage_bucket", name)["force_destroy"] is False


def test_temp_files_expire():
    rules = CONFIG.resource("google_storage_bucket", "dataflow")["lifecycle_rule"]
    temp_rules = [rule for rule in rules if rule["condition"][0].get("matches_prefix") == ["temp/"]]
    assert len(temp_rules) == 1
    assert temp_rules[0]["action"][0]["type"] == "Delete"
    assert temp_rules[0]["condition"][0]["age"] == "${var.temp_file_retention_days}"


def test_staging_files_never_expire():
    rules = CONFIG.resource("google_storage_bucket", "dataflow")["lifecycle_rule"]
    prefixes = [prefix for rule in rules for prefix in rule["condition"][0].get("matches_prefix", [])]
    assert "staging/" not in prefixes


def test_results_bucket_created_only_on_request():
    bucket = CONFIG.resource("google_storage_bucket", "results")
    assert bucket["count"] == "${var.create_results_bucket ? 1 : 0}"


def test_results_bucket_keeps_old_generations():
    bucket = CONFIG.resource("google_storage_bucket", "results")
    assert bucket["versioning"][0]["enabled"] is True


# ---------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("key, topic", sorted(EXPECTED_TOPIC_DEFAULTS.items()))
def test_topic_default_name(key, topic):
    topic_type = CONFIG.variables["kafka_topics"]["type"]
    assert f'{key} = optional(string, "{topic}")' in topic_type


@pytest.mark.parametrize("key", sorted(EXPECTED_TOPIC_DEFAULTS))
def test_topic_created_from_variable(key):
    settings = CONFIG.locals["kafka_topic_settings"]
    assert settings[key]["name"] == f"${{var.kafka_topics.{key}}}"


def test_prompt_injections_topic_compacted():
    settings = CONFIG.locals["kafka_topic_settings"]
    assert settings["prompt_injections"]["configs"]["cleanup.policy"] == "compact"


@pytest.mark.parametrize("key", ["batch_results", "batch_results_dead_letter", "extract_dead_letter"])
def test_other_topics_not_compacted(key):
    settings = CONFIG.locals["kafka_topic_settings"]
    assert "cleanup.policy" not in settings[key]["configs"]


def test_kafka_cluster_optional():
    cluster = CONFIG.resource("google_managed_kafka_cluster", "main")
    assert cluster["count"] == "${var.create_kafka_cluster ? 1 : 0}"


def test_kafka_topics_follow_cluster():
    topics = CONFIG.resource("google_managed_kafka_topic", "topics")
    assert "if var.create_kafka_cluster" in topics["for_each"]


# ---------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------


def test_client_config_variable_sensitive():
    assert CONFIG.variables["kafka_client_config_json"]["sensitive"] is True


def test_client_config_variable_ephemeral():
    assert CONFIG.variables["kafka_client_config_json"]["ephemeral"] is True


def test_client_config_variable_has_no_value():
    assert CONFIG.variables["kafka_client_config_json"]["default"] is None


def test_secret_version_write_only():
    version = CONFIG.resource("google_secret_manager_secret_version", "kafka_client_config")
    assert version["secret_data_wo"] == "${var.kafka_client_config_json}"
    assert "secret_data" not in version


def test_client_config_used_only_by_secret_version():
    users = [
        f"{resource_type}.{name}"
        for resource_type, name, body in CONFIG.iter_resources()
        if "var.kafka_client_config_json" in repr(body)
    ]
    assert users == ["google_secret_manager_secret_version.kafka_client_config"]
