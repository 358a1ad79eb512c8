"""IAM grants in terraform/: least privilege for every service account."""

import json
import re

import pytest

from conftest import TerraformConfig, load_terraform_config

PRIMITIVE_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})

# Roles that let a principal act as or mint tokens for any account of the
# project when granted at project level.
IMPERSONATION_ROLES = frozenset({"roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator"})

# Each account's grants, as (resource the grant is on, role). The resource is
# written as the Terraform reference of the bucket, repository, secret or
# account, or "project".
EXPECTED_GRANTS = {
    "launcher": {
        ("project", "roles/dataflow.developer"),
        ("local.results_bucket_name", "google_project_iam_custom_role.results_object_reader.name"),
        ("google_storage_bucket.templates.name", "roles/storage.objectViewer"),
        ("google_service_account.dataflow.name", "roles/iam.serviceAccountUser"),
        ("google_secret_manager_secret.kafka_client_config.id", "roles/secretmanager.viewer"),
    },
    "dataflow": {
        ("project", "roles/dataflow.worker"),
        ("project", "roles/managedkafka.client"),
        ("local.results_bucket_name", "roles/storage.objectViewer"),
        ("google_storage_bucket.dataflow.name", "roles/storage.objectAdmin"),
        ("google_storage_bucket.templates.name", "roles/storage.objectViewer"),
        ("local.dead_letter_bucket_name", "roles/storage.objectAdmin"),
        ("google_artifact_registry_repository.images.name", "roles/artifactregistry.reader"),
        ("google_secret_manager_secret.kafka_client_config.id", "roles/secretmanager.secretAccessor"),
    },
    "trigger": {
        ("project", "roles/eventarc.eventReceiver"),
        ("google_cloudfunctions2_function.launcher.name", "roles/run.invoker"),
    },
    "build": {
        ("project", "roles/logging.logWriter"),
        ("google_artifact_registry_repository.images.name", "roles/artifactregistry.writer"),
        ("google_storage_bucket.templates.name", "roles/storage.objectViewer"),
    },
}

# Attribute that names the resource a grant is on, per IAM member resource type.
GRANT_TARGET_ATTRIBUTE = {
    "google_project_iam_member": "project",
    "google_storage_bucket_iam_member": "bucket",
    "google_service_account_iam_member": "service_account_id",
    "google_secret_manager_secret_iam_member": "secret_id",
    "google_artifact_registry_repository_iam_member": "repository",
    "google_cloud_run_v2_service_iam_member": "name",
}

ACCOUNT_MEMBER_PATTERN = re.compile(r"^\$\{google_service_account\.(?P<account>[a-z_]+)\.member\}$")


def unwrap_reference(expression: str) -> str:
    """Turn "${google_x.y.name}" into "google_x.y.name"; leave literals as they are."""
    if expression.startswith("${") and expression.endswith("}"):
        return expression[2:-1]
    return expression


def iam_grants(config: TerraformConfig):
    """Yield (resource type, resource name, body) for every IAM grant resource."""
    for resource_type, name, body in config.iter_resources():
        if re.search(r"_iam_(member|binding|policy)$", resource_type):
            yield resource_type, name, body


def grants_by_account(config: TerraformConfig) -> dict[str, set[tuple[str, str]]]:
    """Return account resource name -> set of (grant target, role)."""
    grants: dict[str, set[tuple[str, str]]] = {}
    for resource_type, _, body in iam_grants(config):
        match = ACCOUNT_MEMBER_PATTERN.match(body.get("member", ""))
        if match is None:
            continue
        if resource_type == "google_project_iam_member":
            target = "project"
        else:
            target = unwrap_reference(body[GRANT_TARGET_ATTRIBUTE[resource_type]])
        grants.setdefault(match["account"], set()).add((target, unwrap_reference(body["role"])))
    return grants


GRANT_IDS = [f"{resource_type}.{name}" for resource_type, name, _ in iam_grants(load_terraform_config())]
PROJECT_GRANT_NAMES = sorted(load_terraform_config().resources.get("google_project_iam_member", {}))


@pytest.fixture(params=GRANT_IDS)
def grant(request, terraform_config):
    resource_type, name = request.param.split(".", 1)
    return resource_type, terraform_config.resource(resource_type, name)


def test_grant_role_not_primitive(grant):
    _, body = grant
    assert body["role"] not in PRIMITIVE_ROLES


def test_grant_is_additive_member(grant):
    resource_type, _ = grant
    assert resource_type.endswith("_iam_member")


@pytest.mark.parametrize("name", PROJECT_GRANT_NAMES)
def test_project_grant_cannot_impersonate(terraform_config, name):
    grant_body = terraform_config.resource("google_project_iam_member", name)
    assert grant_body["role"] not in IMPERSONATION_ROLES


def test_grant_member_is_declared_account(grant):
    _, body = grant
    member = body["member"]
    assert ACCOUNT_MEMBER_PATTERN.match(member) or member.startswith("${data.google_storage_project_service_account.")


def test_configuration_mentions_no_primitive_role(terraform_config):
    configuration_text = json.dumps(terraform_config.resources) + json.dumps(terraform_config.locals)
    mentioned = {role for role in PRIMITIVE_ROLES if f'"{role}"' in configuration_text}
    assert mentioned == set()


@pytest.mark.parametrize("account", sorted(EXPECTED_GRANTS))
def test_account_grants_are_exactly_expected(terraform_config, account):
    assert grants_by_account(terraform_config).get(account, set()) == EXPECTED_GRANTS[account]


def test_every_account_has_expected_grants(terraform_config):
    declared_accounts = set(terraform_config.resources["google_service_account"])
    assert declared_accounts == set(EXPECTED_GRANTS)


def test_storage_agent_may_publish_events(terraform_config):
    grant_body = terraform_config.resource("google_project_iam_member", "storage_agent_pubsub_publisher")
    assert grant_body["role"] == "roles/pubsub.publisher"
    assert grant_body["member"] == "${data.google_storage_project_service_account.storage_agent.member}"


def test_results_reader_role_reads_single_objects(terraform_config):
    role = terraform_config.resource("google_project_iam_custom_role", "results_object_reader")
    assert role["permissions"] == ["storage.objects.get"]


def test_function_build_runs_as_build_account(terraform_config):
    function = terraform_config.resource("google_cloudfunctions2_function", "launcher")
    assert function["build_config"][0]["service_account"] == "${google_service_account.build.id}"


def test_dead_letter_grant_only_when_path_set(terraform_config):
    grant_body = terraform_config.resource("google_storage_bucket_iam_member", "dataflow_dead_letter_writer")
    assert "local.dead_letter_bucket_name != null" in grant_body["count"]
