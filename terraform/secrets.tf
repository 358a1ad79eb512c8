# Kafka client credentials in Secret Manager.
#
# The secret's payload is a JSON object of librdkafka properties, for example
# {"security.protocol":"SASL_SSL","sasl.mechanism":"OAUTHBEARER"} for Managed
# Service for Apache Kafka, or SASL/PLAIN or SCRAM settings with a username and
# password. The function and the pipelines receive only the secret version's
# resource name, and the Dataflow workers read the payload at run time.

resource "google_secret_manager_secret" "kafka_client_config" {
  secret_id = local.kafka_config_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}

# Written only when the operator supplies the value through Terraform. The
# value is a write-only argument, so it is kept out of the state and the plan.
resource "google_secret_manager_secret_version" "kafka_client_config" {
  count = var.kafka_client_config_version >= 1 ? 1 : 0

  secret                 = google_secret_manager_secret.kafka_client_config.id
  secret_data_wo         = var.kafka_client_config_json
  secret_data_wo_version = var.kafka_client_config_version
}

locals {
  # Pipelines resolve "latest" at launch, so a new secret version takes effect
  # for the next publish job and on the next update of the streaming job.
  kafka_config_secret_version = "${google_secret_manager_secret.kafka_client_config.id}/versions/latest"
}
