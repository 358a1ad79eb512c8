# Optional Managed Service for Apache Kafka cluster and the four topics, created
# only when create_kafka_cluster is true. The cluster is placed in the Dataflow
# region and attached to the workers' subnetwork, so workers reach the brokers
# over the VPC.

locals {
  kafka_cluster_id = var.kafka_cluster_id == "" ? "${var.name_prefix}-kafka" : var.kafka_cluster_id

  # min.insync.replicas = 2 with acks=all (the producers' setting) means a write
  # is acknowledged only once two replicas hold it.
  kafka_min_insync_replicas      = var.kafka_replication_factor >= 3 ? "2" : "1"
  kafka_dead_letter_retention_ms = tostring(var.kafka_dead_letter_retention_days * 24 * 60 * 60 * 1000)

  kafka_topic_settings = {
    batch_results = {
      name    = var.kafka_topics.batch_results
      configs = { "min.insync.replicas" = local.kafka_min_insync_replicas }
    }
    batch_results_dead_letter = {
      name = var.kafka_topics.batch_results_dead_letter
      configs = {
        "min.insync.replicas" = local.kafka_min_insync_replicas
        "retention.ms"        = local.kafka_dead_letter_retention_ms
      }
    }
    # Keyed by sha256 of the normalized injection string, so compaction keeps
    # one record per distinct string for as long as the topic exists.
    prompt_injections = {
      name = var.kafka_topics.prompt_injections
      configs = {
        "cleanup.policy"      = "compact"
        "min.insync.replicas" = local.kafka_min_insync_replicas
      }
    }
    extract_dead_letter = {
      name = var.kafka_topics.extract_dead_letter
      configs = {
        "min.insync.replicas" = local.kafka_min_insync_replicas
        "retention.ms"        = local.kafka_dead_letter_retention_ms
      }
    }
  }

  # NOTE: The provider does not export the cluster's bootstrap address. This is
  # the documented address format of clusters named by ID, but some newer
  # clusters get a different host. Compare it with `gcloud managed-kafka clusters
  # describe` after the first apply, and set kafka_bootstrap_servers if the two
  # differ.
  kafka_created_bootstrap_servers = "bootstrap.${local.kafka_cluster_id}.${local.dataflow_region}.managedkafka.${var.project_id}.cloud.goog:9092"

  kafka_bootstrap_servers = (
    var.kafka_bootstrap_servers != "" ? var.kafka_bootstrap_servers :
    var.create_kafka_cluster ? local.kafka_created_bootstrap_servers : ""
  )
}

resource "google_managed_kafka_cluster" "main" {
  count = var.create_kafka_cluster ? 1 : 0

  cluster_id = local.kafka_cluster_id
  location   = local.dataflow_region

  capacity_config {
    vcpu_count   = var.kafka_vcpu_count
    memory_bytes = var.kafka_memory_gib * 1024 * 1024 * 1024
  }

  gcp_config {
    access_config {
      network_configs {
        subnet = "projects/${local.network_project_id}/regions/${local.dataflow_region}/subnetworks/${var.subnetwork_name}"
      }
    }
  }

  rebalance_config {
    mode = "AUTO_REBALANCE_ON_SCALE_UP"
  }

  depends_on = [google_project_service.required]
}

resource "google_managed_kafka_topic" "topics" {
  # A filtering for expression, because a conditional between this map and {}
  # needs both sides to have one type, and the topics' configs differ in keys.
  for_each = { for key, topic in local.kafka_topic_settings : key => topic if var.create_kafka_cluster }

  topic_id           = each.value.name
  cluster            = google_managed_kafka_cluster.main[0].cluster_id
  location           = local.dataflow_region
  partition_count    = var.kafka_partition_count
  replication_factor = var.kafka_replication_factor
  configs            = each.value.configs
}
