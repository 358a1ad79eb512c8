"""Fixtures that parse the Terraform configuration in terraform/ with python-hcl2.

No terraform binary is involved: the tests read the configuration as written,
so expressions stay unevaluated strings such as "${var.project_id}".
"""

import dataclasses
import pathlib
from typing import Any

import hcl2
import pytest

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPOSITORY_ROOT / "terraform"

# By default python-hcl2 8.x keeps the quotes of string literals and adds block
# markers. These options give plain values, with expressions as "${...}".
SERIALIZATION_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True,
    explicit_blocks=False,
    with_comments=False,
)


def terraform_files() -> list[pathlib.Path]:
    """Return every .tf file of the configuration, sorted by path."""
    return sorted(
        path for path in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in path.parts
    )


def parse_hcl_file(path: pathlib.Path) -> dict[str, Any]:
    """Parse one HCL file into python-hcl2's dictionary form."""
    with path.open(encoding="utf-8") as hcl_file:
        return hcl2.load(hcl_file, serialization_options=SERIALIZATION_OPTIONS)


@dataclasses.dataclass(frozen=True)
class TerraformConfig:
    """The blocks of all .tf files, merged by kind and keyed by name.

    Attributes:
        resources: resource type -> resource name -> body.
        data_sources: data source type -> name -> body.
        variables: variable name -> body.
        locals: local value name -> expression.
        outputs: output name -> body.
    """

    resources: dict[str, dict[str, dict[str, Any]]]
    data_sources: dict[str, dict[str, dict[str, Any]]]
    variables: dict[str, dict[str, Any]]
    locals: dict[str, Any]
    outputs: dict[str, dict[str, Any]]

    def resource(self, resource_type: str, name: str) -> dict[str, Any]:
        """Return the body of one resource, failing the test if it is missing."""
        resources_of_type = self.resources.get(resource_type, {})
        if name not in resources_of_type:
            pytest.fail(f"terraform/ declares no resource {resource_type}.{name}")
        return resources_of_type[name]

    def iter_resources(self):
        """Yield (type, name, body) for every resource."""
        for resource_type, by_name in self.resources.items():
            for name, body in by_name.items():
                yield resource_type, name, body


def load_terraform_config() -> TerraformConfig:
    """Parse every .tf file under terraform/ and merge the blocks by kind."""
    resources: dict[str, dict[str, dict[str, Any]]] = {}
    data_sources: dict[str, dict[str, dict[str, Any]]] = {}
    variables: dict[str, dict[str, Any]] = {}
    local_values: dict[str, Any] = {}
    outputs: dict[str, dict[str, Any]] = {}

    for path in terraform_files():
        parsed = parse_hcl_file(path)

        for block in parsed.get("resource", []):
            for resource_type, by_name in block.items():
                resources.setdefault(resource_type, {}).update(by_name)
        for block in parsed.get("data", []):
            for data_type, by_name in block.items():
                data_sources.setdefault(data_type, {}).update(by_name)
        for block in parsed.get("variable", []):
            variables.update(block)
        for block in parsed.get("locals", []):
            local_values.update(block)
        for block in parsed.get("output", []):
            outputs.update(block)

    return TerraformConfig(
        resources=resources,
        data_sources=data_sources,
        variables=variables,
        locals=local_values,
        outputs=outputs,
    )


@pytest.fixture(scope="session")
def terraform_config() -> TerraformConfig:
    """The parsed configuration, shared by every test of the session."""
    return load_terraform_config()
