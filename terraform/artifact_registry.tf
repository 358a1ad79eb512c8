# Docker repository for the two Flex Template images and the function's
# build image.

resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84: Encrypted with Google-managed keys. The images hold code, not data, and a customer-managed key needs a key ring and service agent grants that each organization sets up under its own policy.
  location      = var.region
  repository_id = local.artifact_repository_id
  description   = "Flex Template images for publish_results and extract_injections, and the launcher function's image."
  format        = "DOCKER"

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "${var.untagged_image_retention_days}d"
    }
  }

  # KEEP policies win over DELETE policies, so the images a running streaming
  # job may still pull when it adds workers are never removed.
  cleanup_policies {
    id     = "keep-recent-versions"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "keep-tagged"
    action = "KEEP"
    condition {
      tag_state = "TAGGED"
    }
  }

  depends_on = [google_project_service.required]
}
