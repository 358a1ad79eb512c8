# Cloud Storage buckets: the results bucket (created here or existing), the
# bucket for Flex Template specs and the function source, and the bucket for
# Dataflow temp and staging files. Every bucket created here has uniform
# bucket-level access and enforced public access prevention.

resource "google_storage_bucket" "results" {
  count = var.create_results_bucket ? 1 : 0
  # checkov:skip=CKV_GCP_62: Access is recorded by Cloud Audit Logs once Data Access logs are enabled for Cloud Storage, a project or organization setting. Usage logs are a legacy feature and would need one more bucket.

  name                        = var.results_bucket_name
  location                    = var.results_bucket_location == "" ? var.region : var.results_bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Vertex AI rewrites predictions.jsonl while a batch job runs. A publish job
  # is launched for one generation and reads that generation, so replaced
  # generations are kept for a while instead of disappearing on overwrite.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.results_noncurrent_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.required]
}

data "google_storage_bucket" "results" {
  count = var.create_results_bucket ? 0 : 1

  name = var.results_bucket_name
}

locals {
  results_bucket_name = var.create_results_bucket ? google_storage_bucket.results[0].name : data.google_storage_bucket.results[0].name

  # Eventarc receives Cloud Storage events only in the bucket's own location
  # (a region, a dual-region or a multi-region such as "us"), in lowercase.
  results_bucket_location = lower(var.create_results_bucket ? google_storage_bucket.results[0].location : data.google_storage_bucket.results[0].location)
}

resource "google_storage_bucket" "templates" {
  # checkov:skip=CKV_GCP_62: Access is recorded by Cloud Audit Logs once Data Access logs are enabled for Cloud Storage, a project or organization setting. Usage logs are a legacy feature and would need one more bucket.
  name                        = local.templates_bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Template specs are overwritten on every build, and old versions allow a rollback.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.required]
}

resource "google_storage_bucket" "dataflow" {
  # checkov:skip=CKV_GCP_62: Access is recorded by Cloud Audit Logs once Data Access logs are enabled for Cloud Storage, a project or organization setting. Usage logs are a legacy feature and would need one more bucket.
  # checkov:skip=CKV_GCP_78: Temp and staging files are rewritten on every job launch and have no use once replaced, so old versions would only add cost.
  name                        = local.dataflow_bucket_name
  location                    = local.dataflow_region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Temp files churn constantly, so soft-deleted copies would only add cost.
  soft_delete_policy {
    retention_duration_seconds = 0
  }

  lifecycle_rule {
    condition {
      age            = var.temp_file_retention_days
      matches_prefix = ["temp/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.required]
}
