# The extract_injections streaming job, run from its Flex Template. The
# publish_results batch jobs are not declared here: the launcher function
# starts one per result file (see function.tf).

resource "google_dataflow_flex_template_job" "extract_injections" {
  provider = google-beta
  count    = var.deploy_extraction_job ? 1 : 0

  name                    = "${var.name_prefix}-extract-injections"
  region                  = local.dataflow_region
  container_spec_gcs_path = local.extract_template_gcs_path

  # Pipeline options of pipelines/extract_injections.py, by their exact names.
  # kafka_config_secret is a secret version's resource name, and the workers read
  # the payload themselves, so no credential passes through Terraform here.
  parameters = {
    bootstrap_servers   = local.kafka_bootstrap_servers
    input_topic         = var.kafka_topics.batch_results
    output_topic        = var.kafka_topics.prompt_injections
    dead_letter_topic   = var.kafka_topics.extract_dead_letter
    consumer_group      = local.consumer_group
    kafka_config        = local.kafka_config_json
    kafka_config_secret = local.kafka_config_secret_version
  }

  service_account_email   = google_service_account.dataflow.email
  temp_location           = local.dataflow_temp_location
  staging_location        = local.dataflow_staging_location
  network                 = local.dataflow_network == "" ? null : local.dataflow_network
  subnetwork              = local.dataflow_subnetwork
  ip_configuration        = var.dataflow_use_public_ips ? "WORKER_IP_PUBLIC" : "WORKER_IP_PRIVATE"
  sdk_container_image     = var.workers_use_template_image ? local.extract_image : null
  max_workers             = var.extract_max_workers
  machine_type            = var.extract_machine_type == "" ? null : var.extract_machine_type
  enable_streaming_engine = true

  # Drain on destroy: the job stops reading new records and finishes writing
  # the ones it has already read before it stops.
  on_delete                    = "drain"
  skip_wait_on_job_termination = false

  depends_on = [
    google_project_service.required,
    google_project_iam_member.dataflow_worker,
    google_project_iam_member.dataflow_managed_kafka_client,
    google_storage_bucket_iam_member.dataflow_temp_admin,
    google_storage_bucket_iam_member.dataflow_templates_reader,
    google_artifact_registry_repository_iam_member.dataflow_image_reader,
    google_secret_manager_secret_iam_member.dataflow_kafka_secret_accessor,
    google_managed_kafka_topic.topics,
  ]
}
