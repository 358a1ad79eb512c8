# Service accounts and their grants. Each account gets only the roles its job
# needs, granted on the narrowest resource that supports IAM. Project-level
# grants are used only where no narrower resource exists.
#
#   launcher  runs the Cloud Function: reads result object metadata, launches
#             publish_results jobs and lets them run as the worker account.
#   dataflow  runs the Dataflow launcher VMs and workers of both pipelines.
#   trigger   is the identity Eventarc uses to deliver events to the function.
#   build     builds the function's container image with Cloud Build.

resource "google_service_account" "launcher" {
  account_id   = "${var.name_prefix}-launcher"
  display_name = "Batch results launcher function"
  description  = "Runs the Cloud Function that launches one publish_results Dataflow job per finalized result file."

  depends_on = [google_project_service.required]
}

resource "google_service_account" "dataflow" {
  account_id   = "${var.name_prefix}-dataflow"
  display_name = "Batch results Dataflow workers"
  description  = "Runs the Dataflow launcher VMs and workers of publish_results and extract_injections."

  depends_on = [google_project_service.required]
}

resource "google_service_account" "trigger" {
  account_id   = "${var.name_prefix}-trigger"
  display_name = "Batch results Eventarc trigger"
  description  = "Identity that Eventarc uses to deliver Cloud Storage events to the launcher function."

  depends_on = [google_project_service.required]
}

resource "google_service_account" "build" {
  account_id   = "${var.name_prefix}-build"
  display_name = "Batch results function build"
  description  = "Runs the Cloud Build job that builds the launcher function's container image."

  depends_on = [google_project_service.required]
}

# ---------------------------------------------------------------------------
# launcher: the Cloud Function's runtime identity
# ---------------------------------------------------------------------------

# storage.objects.get alone: read one object's metadata (it also allows reading
# the content, since Cloud Storage has no metadata-only permission), without
# listing the bucket.
resource "google_project_iam_custom_role" "results_object_reader" {
  role_id     = "${replace(var.name_prefix, "-", "_")}_results_object_reader"
  title       = "Batch results object reader"
  description = "Reads single objects of the results bucket without listing it."
  permissions = ["storage.objects.get"]
}

resource "google_storage_bucket_iam_member" "launcher_results_object_reader" {
  bucket = local.results_bucket_name
  role   = google_project_iam_custom_role.results_object_reader.name
  member = google_service_account.launcher.member
}

# Creates Dataflow jobs. No narrower resource than the project accepts this role.
resource "google_project_iam_member" "launcher_dataflow_developer" {
  # checkov:skip=CKV_GCP_49: roles/dataflow.developer is the predefined role for launching jobs and holds no iam.serviceAccounts permission. Which account a launched job can run as is limited by launcher_acts_as_dataflow, granted on the worker account alone.
  project = var.project_id
  role    = "roles/dataflow.developer"
  member  = google_service_account.launcher.member
}

# Lets the function launch jobs that run as the worker account, and no other.
resource "google_service_account_iam_member" "launcher_acts_as_dataflow" {
  service_account_id = google_service_account.dataflow.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.launcher.member
}

# Dataflow reads the Flex Template spec with the caller's credentials.
resource "google_storage_bucket_iam_member" "launcher_templates_reader" {
  bucket = google_storage_bucket.templates.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.launcher.member
}

# Metadata of the Kafka secret (to check the reference it passes on), never its payload.
resource "google_secret_manager_secret_iam_member" "launcher_kafka_secret_viewer" {
  secret_id = google_secret_manager_secret.kafka_client_config.id
  role      = "roles/secretmanager.viewer"
  member    = google_service_account.launcher.member
}

# ---------------------------------------------------------------------------
# dataflow: launcher VMs and workers of both pipelines
# ---------------------------------------------------------------------------

# NOTE: Google's Flex Template guide also lists roles/viewer for the launcher
# VM's account. That primitive role is deliberately not granted. If a launch
# fails on a missing permission, grant the narrow role that contains it.
resource "google_project_iam_member" "dataflow_worker" {
  project = var.project_id
  role    = "roles/dataflow.worker"
  member  = google_service_account.dataflow.member
}

# OAUTHBEARER authentication to Managed Service for Apache Kafka. The service
# has no cluster-level IAM resource in the provider, so the grant is per project.
resource "google_project_iam_member" "dataflow_managed_kafka_client" {
  count = var.grant_managed_kafka_client ? 1 : 0

  project = var.project_id
  role    = "roles/managedkafka.client"
  member  = google_service_account.dataflow.member
}

resource "google_storage_bucket_iam_member" "dataflow_results_reader" {
  bucket = local.results_bucket_name
  role   = "roles/storage.objectViewer"
  member = google_service_account.dataflow.member
}

resource "google_storage_bucket_iam_member" "dataflow_temp_admin" {
  bucket = google_storage_bucket.dataflow.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.dataflow.member
}

resource "google_storage_bucket_iam_member" "dataflow_templates_reader" {
  bucket = google_storage_bucket.templates.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.dataflow.member
}

# Dead-letter files are written through temporary objects that are then
# renamed, which needs create, list and delete: roles/storage.objectAdmin.
resource "google_storage_bucket_iam_member" "dataflow_dead_letter_writer" {
  count = local.dead_letter_bucket_name != null && local.dead_letter_bucket_name != local.dataflow_bucket_name ? 1 : 0

  bucket = local.dead_letter_bucket_name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.dataflow.member
}

resource "google_artifact_registry_repository_iam_member" "dataflow_image_reader" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = google_service_account.dataflow.member
}

resource "google_secret_manager_secret_iam_member" "dataflow_kafka_secret_accessor" {
  secret_id = google_secret_manager_secret.kafka_client_config.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.dataflow.member
}

# ---------------------------------------------------------------------------
# trigger: Eventarc delivery to the function
# ---------------------------------------------------------------------------

resource "google_project_iam_member" "trigger_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.trigger.member
}

# A 2nd gen function is served by a Cloud Run service of the same name.
resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_launcher" {
  project  = var.project_id
  location = google_cloudfunctions2_function.launcher.location
  name     = google_cloudfunctions2_function.launcher.name
  role     = "roles/run.invoker"
  member   = google_service_account.trigger.member
}

# ---------------------------------------------------------------------------
# build: Cloud Build for the function's image
# ---------------------------------------------------------------------------

resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

resource "google_artifact_registry_repository_iam_member" "build_image_writer" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_source_reader" {
  bucket = google_storage_bucket.templates.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

# ---------------------------------------------------------------------------
# Google-managed service agents
# ---------------------------------------------------------------------------

# Cloud Storage publishes object events to Pub/Sub, which Eventarc reads from,
# so its service agent needs publisher rights for a storage trigger to work.
data "google_storage_project_service_account" "storage_agent" {
  depends_on = [google_project_service.required]
}

resource "google_project_iam_member" "storage_agent_pubsub_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = data.google_storage_project_service_account.storage_agent.member
}
