# Names and paths derived from the variables, shared by several files.

locals {
  labels = merge({ app = var.name_prefix }, var.labels)

  dataflow_region    = var.dataflow_region == "" ? var.region : var.dataflow_region
  network_project_id = var.network_project_id == "" ? var.project_id : var.network_project_id

  # Dataflow accepts a full subnetwork URL, which is also the form a Shared VPC
  # subnetwork needs. A network name from another project is rejected, so the
  # network is left out for a Shared VPC and Dataflow takes it from the subnetwork.
  dataflow_subnetwork = "https://www.googleapis.com/compute/v1/projects/${local.network_project_id}/regions/${local.dataflow_region}/subnetworks/${var.subnetwork_name}"
  dataflow_network    = local.network_project_id == var.project_id ? var.network_name : ""

  templates_bucket_name = var.templates_bucket_name == "" ? "${var.project_id}-${var.name_prefix}-templates" : var.templates_bucket_name
  dataflow_bucket_name  = var.dataflow_bucket_name == "" ? "${var.project_id}-${var.name_prefix}-dataflow" : var.dataflow_bucket_name

  dataflow_temp_location    = "gs://${local.dataflow_bucket_name}/temp"
  dataflow_staging_location = "gs://${local.dataflow_bucket_name}/staging"

  publish_template_gcs_path = var.publish_template_gcs_path == "" ? "gs://${local.templates_bucket_name}/templates/publish_results.json" : var.publish_template_gcs_path
  extract_template_gcs_path = var.extract_template_gcs_path == "" ? "gs://${local.templates_bucket_name}/templates/extract_injections.json" : var.extract_template_gcs_path

  # Bucket of the optional dead-letter file prefix, or null when it is off.
  dead_letter_bucket_name = var.dead_letter_path == "" ? null : regex("^gs://([^/]+)", var.dead_letter_path)[0]

  artifact_repository_id = var.artifact_repository_id == "" ? "${var.name_prefix}-images" : var.artifact_repository_id
  image_path_prefix      = "${var.region}-docker.pkg.dev/${var.project_id}/${local.artifact_repository_id}"
  publish_image          = "${local.image_path_prefix}/publish-results:${var.template_image_tag}"
  extract_image          = "${local.image_path_prefix}/extract-injections:${var.template_image_tag}"

  kafka_config_secret_id = var.kafka_config_secret_id == "" ? "${var.name_prefix}-kafka-client-config" : var.kafka_config_secret_id
  consumer_group         = var.consumer_group == "" ? "${var.name_prefix}-extract-injections" : var.consumer_group

  # Non-secret librdkafka properties, passed to the pipelines as one JSON object.
  kafka_config_json = jsonencode(var.kafka_client_properties)
}
