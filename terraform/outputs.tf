# Values an operator needs after apply: where to build the templates, what
# the function and jobs run as, and where Kafka is.

output "results_bucket" {
  description = "Bucket the launcher function watches for finalized result files."
  value       = local.results_bucket_name
}

output "templates_bucket" {
  description = "Bucket for Flex Template specs and the function's source archive."
  value       = google_storage_bucket.templates.name
}

output "dataflow_bucket" {
  description = "Bucket for Dataflow temp and staging files."
  value       = google_storage_bucket.dataflow.name
}

output "publish_template_gcs_path" {
  description = "Where the publish_results Flex Template spec must be built to."
  value       = local.publish_template_gcs_path
}

output "extract_template_gcs_path" {
  description = "Where the extract_injections Flex Template spec must be built to."
  value       = local.extract_template_gcs_path
}

output "publish_image" {
  description = "Image the publish_results Flex Template must be built with (tag from template_image_tag)."
  value       = local.publish_image
}

output "extract_image" {
  description = "Image the extract_injections Flex Template must be built with (tag from template_image_tag)."
  value       = local.extract_image
}

output "function_name" {
  description = "Name of the launcher Cloud Function."
  value       = google_cloudfunctions2_function.launcher.name
}

output "eventarc_trigger" {
  description = "Resource name of the Eventarc trigger that delivers finalized-object events to the function."
  value       = google_cloudfunctions2_function.launcher.event_trigger[0].trigger
}

output "launcher_service_account" {
  description = "Email of the function's runtime service account."
  value       = google_service_account.launcher.email
}

output "dataflow_service_account" {
  description = "Email of the service account that Dataflow launcher VMs and workers run as."
  value       = google_service_account.dataflow.email
}

output "kafka_bootstrap_servers" {
  description = "Kafka bootstrap servers given to both pipelines."
  value       = local.kafka_bootstrap_servers
}

output "kafka_config_secret_version" {
  description = "Secret Manager version name passed to the pipelines as kafka_config_secret."
  value       = local.kafka_config_secret_version
}

output "kafka_cluster" {
  description = "Resource name of the Managed Service for Apache Kafka cluster, or null when create_kafka_cluster is false."
  value       = var.create_kafka_cluster ? google_managed_kafka_cluster.main[0].name : null
}

output "extract_injections_job_id" {
  description = "Dataflow job ID of the extract_injections streaming job, or null when deploy_extraction_job is false."
  value       = var.deploy_extraction_job ? google_dataflow_flex_template_job.extract_injections[0].job_id : null
}
