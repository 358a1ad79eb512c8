#!/usr/bin/env bash
# Statically check the Terraform configuration in terraform/.
#
# 1. Parse every .tf file under terraform/ with python-hcl2 and fail on the
#    first file that does not parse, naming it.
# 2. Run checkov on terraform/ and fail on any failed check. Every skip must be
#    an inline "checkov:skip=ID: reason" comment inside the resource.
#
# No terraform or tofu binary is needed, and `terraform plan` is not run.
#
# The tools are installed into their own virtual environments under
# ${TF_CHECK_VENV:-.venv-terraform}, never into the project's environment:
# checkov's dependencies conflict with apache-beam's. checkov and python-hcl2
# also get one venv each, because checkov depends on bc-python-hcl2, which
# installs a module with the same name (hcl2) and would overwrite python-hcl2.
#
# Usage: tools/terraform_check.sh
# Environment:
#   TF_CHECK_VENV  folder for the two virtual environments (default .venv-terraform)
#   PYTHON         interpreter used to create them (default python3)

set -euo pipefail

readonly CHECKOV_VERSION="3.3.30"
readonly PYTHON_HCL2_VERSION="8.1.4"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

venv_root="${TF_CHECK_VENV:-.venv-terraform}"
python="${PYTHON:-python3}"
terraform_dir="terraform"
# Switches on every optional resource, so that checkov evaluates all of them.
checkov_var_file="tests/terraform/checkov.tfvars"

# Create the venv at $1 and install the pinned requirement $2 into it, unless
# it is already there at that version.
ensure_venv() {
  local venv_dir="$1"
  local requirement="$2"
  local package="${requirement%%==*}"
  local version="${requirement##*==}"

  if [[ -x "${venv_dir}/bin/python" ]] \
    && [[ "$("${venv_dir}/bin/python" -m pip show "${package}" 2>/dev/null | sed -n 's/^Version: //p')" == "${version}" ]]; then
    return 0
  fi

  echo "Installing ${requirement} into ${venv_dir}"
  "${python}" -m venv "${venv_dir}"
  "${venv_dir}/bin/python" -m pip install --quiet --disable-pip-version-check "${requirement}"
}

ensure_venv "${venv_root}/python-hcl2" "python-hcl2==${PYTHON_HCL2_VERSION}"
ensure_venv "${venv_root}/checkov" "checkov==${CHECKOV_VERSION}"

echo "Parsing .tf files under ${terraform_dir}/ with python-hcl2 ${PYTHON_HCL2_VERSION}"
"${venv_root}/python-hcl2/bin/python" - "${terraform_dir}" <<'PYTHON'
import pathlib
import sys

import hcl2

terraform_dir = pathlib.Path(sys.argv[1])
paths = sorted(
    path for path in terraform_dir.rglob("*.tf") if ".terraform" not in path.parts
)
if not paths:
    sys.exit(f"No .tf files found under {terraform_dir}/.")

failed = []
for path in paths:
    try:
        with path.open(encoding="utf-8") as tf_file:
            hcl2.load(tf_file)
    except Exception as error:  # python-hcl2 raises several lark error types.
        failed.append(path)
        print(f"FAILED to parse {path}: {type(error).__name__}: {error}", file=sys.stderr)
    else:
        print(f"parsed {path}")

if failed:
    sys.exit(f"{len(failed)} of {len(paths)} .tf files did not parse.")
print(f"All {len(paths)} .tf files parsed.")
PYTHON

echo "Running checkov ${CHECKOV_VERSION} on ${terraform_dir}/"
# --skip-download and the two variables keep checkov offline: without them it
# calls the Prisma Cloud API for check metadata and PyPI for a version check.
BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true \
  "${venv_root}/checkov/bin/checkov" \
  --directory "${terraform_dir}" \
  --framework terraform \
  --var-file "${checkov_var_file}" \
  --skip-download \
  --quiet \
  --compact
echo "checkov reported no failed checks."
