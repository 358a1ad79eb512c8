"""Kafka connection settings shared by the read and write transforms.

Settings are librdkafka properties passed through unchanged, so PLAINTEXT,
SASL_SSL with PLAIN or SCRAM, and OAUTHBEARER all work from configuration.
Secrets never need to appear on a command line:

* a value written as `${NAME}` is replaced by the environment variable NAME
  on the worker, when the client is created;
* `secret_name` names a Secret Manager secret version whose payload is a JSON
  object of further properties, read on the worker.

Properties are merged in this order, later ones winning: the transform's
defaults, `config` (from `--kafka_config`), then the secret's payload.
Use `redact()` before logging any configuration.
"""

import dataclasses
import json
import logging
import os
import re
from typing import Mapping, Optional

_LOGGER = logging.getLogger(__name__)

_ENVIRONMENT_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Property names whose values are secret in librdkafka's configuration.
_SECRET_MARKERS = ("password", "secret", "token", "key.pem", "keystore", "jaas", "credentials")

REDACTED = "[redacted]"


class KafkaConfigError(ValueError):
    """Raised for an invalid or unresolvable Kafka configuration."""


def parse_config_json(text: Optional[str], option: str = "--kafka_config") -> dict:
    """Parse a JSON object of librdkafka properties from an option value.

    Args:
        text: The option value: a JSON object, `@PATH` to read one from a file,
            or empty for no properties.
        option: The option name, for error messages.

    Raises:
        KafkaConfigError: If the value is not a JSON object of scalar values.
    """
    if not text:
        return {}
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as stream:
            text = stream.read()
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        # The message names the position only: the value can hold secrets.
        raise KafkaConfigError(
            f"{option} is not valid JSON (line {error.lineno}, column {error.colno}); "
            'expected an object such as {"security.protocol": "SASL_SSL"}.') from None
    if not isinstance(config, dict):
        raise KafkaConfigError(f"{option} must be a JSON object of librdkafka properties.")
    for name, value in config.items():
        if not isinstance(value, (str, int, float, bool)):
            raise KafkaConfigError(f"{option}: property {name!r} must be a string, number or boolean.")
    return {name: _to_property_value(value) for name, value in config.items()}


def _to_property_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_secret_property(name: str) -> bool:
    """Whether a librdkafka property contains a secret and must not be logged."""
    lowered = name.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact(config: Mapping[str, object]) -> dict:
    """Return a copy of `config` that is safe to log."""
    return {name: (REDACTED if is_secret_property(name) else value) for name, value in config.items()}


def expand_environment(config: Mapping[str, str], environ: Optional[Mapping[str, str]] = None) -> dict:
    """Replace `${NAME}` references in property values with environment variables.

    Raises:
        KafkaConfigError: If a referenced variable is not set.
    """
    environ = os.environ if environ is None else environ
    expanded = {}
    for name, value in config.items():
        def substitute(match, property_name=name):
            variable = match.group(1)
            if variable not in environ:
                raise KafkaConfigError(
                    f"Kafka property {property_name!r} refers to environment variable {variable}, which is not set.")
            return environ[variable]

        expanded[name] = _ENVIRONMENT_REFERENCE.sub(substitute, value) if isinstance(value, str) else value
    return expanded


def read_secret_config(secret_name: str) -> dict:
    """Read a JSON object of librdkafka properties from Secret Manager.

    Args:
        secret_name: A secret version resource name,
            `projects/P/secrets/S/versions/V`.

    Raises:
        KafkaConfigError: If the payload is not a JSON object.
    """
    from google.cloud import secretmanager  # Only jobs that use a secret need the client.

    response = secretmanager.SecretManagerServiceClient().access_secret_version(name=secret_name)
    return parse_config_json(response.payload.data.decode("utf-8"), option=f"secret {secret_name}")


@dataclasses.dataclass(frozen=True)
class KafkaConnection:
    """Kafka connection settings, picklable and resolved on the worker.

    Attributes:
        bootstrap_servers: `host:port[,host:port...]`.
        config: Extra librdkafka properties; values may use `${NAME}`.
        secret_name: Optional Secret Manager version with more properties.
    """

    bootstrap_servers: str
    config: Mapping[str, str] = dataclasses.field(default_factory=dict)
    secret_name: Optional[str] = None

    def client_config(self, defaults: Mapping[str, str]) -> dict:
        """Return the full librdkafka configuration for a new client.

        Args:
            defaults: The transform's own defaults, overridden by user settings.
        """
        if not self.bootstrap_servers:
            raise KafkaConfigError("Kafka bootstrap servers are missing: set --bootstrap_servers HOST:PORT.")
        merged = dict(defaults)
        merged["bootstrap.servers"] = self.bootstrap_servers
        merged.update(self.config)
        if self.secret_name:
            merged.update(read_secret_config(self.secret_name))
        return expand_environment(merged)

    def __repr__(self) -> str:
        # Beam and loggers may print this object: never show secret values.
        return (f"KafkaConnection(bootstrap_servers={self.bootstrap_servers!r}, "
                f"config={redact(self.config)!r}, secret_name={self.secret_name!r})")
