# Input variables. Only project_id, results_bucket_name and either
# kafka_bootstrap_servers or create_kafka_cluster = true must be set.
# Every other variable has a working default.

# ---------------------------------------------------------------------------
# Project and naming
# ---------------------------------------------------------------------------

variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project that hosts every resource."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "The project_id must be a project ID (6 to 30 lowercase letters, digits or hyphens, starting with a letter), not a project name or number."
  }
}

variable "region" {
  type        = string
  description = "Region of the Cloud Function, the Artifact Registry repository, the Dataflow buckets and, by default, the Dataflow jobs and the Kafka cluster."
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+(-[a-z]+)+[0-9]+$", var.region))
    error_message = "The region must be a Google Cloud region such as us-central1 or europe-west4."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name this configuration derives (service accounts, buckets, function, job, secret). Keep it short: service account IDs are limited to 30 characters."
  default     = "batch-results"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "The name_prefix must be 3 to 20 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that supports labels, on top of app = name_prefix."
  default     = {}

  validation {
    condition     = alltrue([for key, value in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", key)) && can(regex("^[a-z0-9_-]{0,63}$", value))])
    error_message = "Label keys must start with a lowercase letter; keys and values may contain only lowercase letters, digits, underscores and hyphens, up to 63 characters."
  }
}

variable "enable_apis" {
  type        = bool
  description = "Enable the Google Cloud APIs this system uses. Set to false when the project's APIs are managed elsewhere."
  default     = true
}

# ---------------------------------------------------------------------------
# Buckets
# ---------------------------------------------------------------------------

variable "results_bucket_name" {
  type        = string
  description = "Name of the bucket that Vertex AI batch prediction writes results to (results/YYYY/MM/DD/prediction-model-*/predictions.jsonl). The function is triggered by objects finalized in this bucket."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.results_bucket_name))
    error_message = "The results_bucket_name must be a bucket name without the gs:// prefix: 3 to 63 lowercase letters, digits, hyphens, underscores or dots."
  }
}

variable "create_results_bucket" {
  type        = bool
  description = "Create the results bucket. When false, the bucket named by results_bucket_name must already exist, and this configuration only reads its location and adds IAM grants to it."
  default     = false
}

variable "results_bucket_location" {
  type        = string
  description = "Location of the results bucket when create_results_bucket is true (a region such as us-central1, or a multi-region such as US). Empty means var.region. The Eventarc trigger is created in the bucket's location."
  default     = ""

  validation {
    condition     = var.results_bucket_location == "" || can(regex("^[A-Za-z]+(-[A-Za-z]+[0-9]+)?$", var.results_bucket_location))
    error_message = "The results_bucket_location must be empty, a region such as us-central1, or a multi-region such as US or EU."
  }
}

variable "results_noncurrent_retention_days" {
  type        = number
  description = "Days a replaced generation of a result file is kept in a results bucket created here. Vertex AI rewrites predictions.jsonl while a job runs, and a publish job launched for an older generation must still be able to read it."
  default     = 30

  validation {
    condition     = var.results_noncurrent_retention_days >= 1 && var.results_noncurrent_retention_days <= 3650
    error_message = "The results_noncurrent_retention_days must be between 1 and 3650."
  }
}

variable "templates_bucket_name" {
  type        = string
  description = "Name of the bucket for Flex Template specs and the function's source archive. Empty means <project_id>-<name_prefix>-templates."
  default     = ""

  validation {
    condition     = var.templates_bucket_name == "" || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.templates_bucket_name))
    error_message = "The templates_bucket_name must be empty or a bucket name without the gs:// prefix."
  }
}

variable "dataflow_bucket_name" {
  type        = string
  description = "Name of the bucket for Dataflow temp and staging files. Empty means <project_id>-<name_prefix>-dataflow."
  default     = ""

  validation {
    condition     = var.dataflow_bucket_name == "" || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.dataflow_bucket_name))
    error_message = "The dataflow_bucket_name must be empty or a bucket name without the gs:// prefix."
  }
}

variable "temp_file_retention_days" {
  type        = number
  description = "Days after which objects under temp/ in the Dataflow bucket are deleted. Jobs delete their own temp files when they finish; this removes what failed or cancelled jobs leave behind. Objects under staging/ are kept, because workers that a running job adds later download them again."
  default     = 7

  validation {
    condition     = var.temp_file_retention_days >= 1 && var.temp_file_retention_days <= 365
    error_message = "The temp_file_retention_days must be between 1 and 365."
  }
}

# ---------------------------------------------------------------------------
# Container images
# ---------------------------------------------------------------------------

variable "artifact_repository_id" {
  type        = string
  description = "ID of the Artifact Registry Docker repository for the Flex Template images and the function's build image. Empty means <name_prefix>-images."
  default     = ""

  validation {
    condition     = var.artifact_repository_id == "" || can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.artifact_repository_id))
    error_message = "The artifact_repository_id must be empty or 1 to 63 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "untagged_image_retention_days" {
  type        = number
  description = "Days after which untagged images in the repository are deleted. Tagged images and the 10 most recent versions of each image are always kept."
  default     = 30

  validation {
    condition     = var.untagged_image_retention_days >= 1
    error_message = "The untagged_image_retention_days must be at least 1."
  }
}

# ---------------------------------------------------------------------------
# Cloud Function (launcher)
# ---------------------------------------------------------------------------

variable "function_entry_module" {
  type        = string
  description = "Python module inside function_launcher/ that defines the entry point on_result_finalized. The deployed archive gets a main.py that re-exports it, because Cloud Functions loads main.py from the archive root."
  default     = "function_launcher.main"

  validation {
    condition     = can(regex("^function_launcher(\\.[a-z_][a-z0-9_]*)+$", var.function_entry_module))
    error_message = "The function_entry_module must be a dotted module path inside the function_launcher package, such as function_launcher.main."
  }
}

variable "function_source_packages" {
  type        = list(string)
  description = "Top-level Python packages of this repository copied into the function's source archive. function_launcher is required; add a package here only if function_launcher imports it."
  default     = ["function_launcher"]

  validation {
    condition     = contains(var.function_source_packages, "function_launcher")
    error_message = "The function_source_packages must contain function_launcher."
  }
}

variable "function_python_requirements" {
  type        = list(string)
  description = "Requirement lines written to the archive's requirements.txt when function_launcher/requirements.txt does not exist. They match the launcher extra in setup.py."
  default = [
    "functions-framework==3.10.2",
    "google-cloud-dataflow-client==0.13.0",
  ]

  validation {
    condition     = length(var.function_python_requirements) > 0
    error_message = "The function_python_requirements must list at least one requirement."
  }
}

variable "function_max_instances" {
  type        = number
  description = "Maximum number of function instances. Each instance handles one event at a time, so this also caps how many publish jobs can be launched at once."
  default     = 10

  validation {
    condition     = var.function_max_instances >= 1 && var.function_max_instances <= 1000
    error_message = "The function_max_instances must be between 1 and 1000."
  }
}

variable "function_memory" {
  type        = string
  description = "Memory of each function instance, in Cloud Functions notation (for example 256M, 512M, 1Gi)."
  default     = "512M"

  validation {
    condition     = can(regex("^[0-9]+(k|M|G|Mi|Gi)$", var.function_memory))
    error_message = "The function_memory must be a number followed by k, M, G, Mi or Gi, such as 512M."
  }
}

variable "function_timeout_seconds" {
  type        = number
  description = "Seconds the function may run for one event before it is stopped and the event is retried. Launching a Flex Template job usually takes a few seconds."
  default     = 120

  validation {
    condition     = var.function_timeout_seconds >= 10 && var.function_timeout_seconds <= 540
    error_message = "The function_timeout_seconds must be between 10 and 540 (the limit for event-driven functions)."
  }
}

# ---------------------------------------------------------------------------
# Dataflow
# ---------------------------------------------------------------------------

variable "dataflow_region" {
  type        = string
  description = "Region of the Dataflow jobs. Empty means var.region. Use the region of the Kafka cluster so that workers reach it over the VPC."
  default     = ""

  validation {
    condition     = var.dataflow_region == "" || can(regex("^[a-z]+(-[a-z]+)+[0-9]+$", var.dataflow_region))
    error_message = "The dataflow_region must be empty or a Google Cloud region such as us-central1."
  }
}

variable "network_name" {
  type        = string
  description = "Name of the VPC network for Dataflow workers (and the Kafka cluster when created here)."
  default     = "default"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.network_name))
    error_message = "The network_name must be a VPC network name, not a URL."
  }
}

variable "subnetwork_name" {
  type        = string
  description = "Name of the subnetwork, in the Dataflow region, for Dataflow workers (and the Kafka cluster when created here). Private Google Access must be on when dataflow_use_public_ips is false."
  default     = "default"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.subnetwork_name))
    error_message = "The subnetwork_name must be a subnetwork name, not a URL."
  }
}

variable "network_project_id" {
  type        = string
  description = "Project that owns the network, for a Shared VPC. Empty means project_id."
  default     = ""

  validation {
    condition     = var.network_project_id == "" || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.network_project_id))
    error_message = "The network_project_id must be empty or a project ID."
  }
}

variable "dataflow_use_public_ips" {
  type        = bool
  description = "Give Dataflow workers external IP addresses. Keep false unless the Kafka brokers are only reachable over the internet and the subnetwork has no Cloud NAT."
  default     = false
}

variable "publish_max_workers" {
  type        = number
  description = "Maximum number of workers of each publish_results batch job (passed to the function as DATAFLOW_MAX_WORKERS)."
  default     = 10

  validation {
    condition     = var.publish_max_workers >= 1 && var.publish_max_workers <= 1000
    error_message = "The publish_max_workers must be between 1 and 1000."
  }
}

variable "deploy_extraction_job" {
  type        = bool
  description = "Run the extract_injections streaming job. Set to false for the first apply, before the Flex Template images and specs are built into the repository and bucket this configuration creates."
  default     = true
}

variable "extract_max_workers" {
  type        = number
  description = "Maximum number of workers of the extract_injections streaming job."
  default     = 5

  validation {
    condition     = var.extract_max_workers >= 1 && var.extract_max_workers <= 1000
    error_message = "The extract_max_workers must be between 1 and 1000."
  }
}

variable "extract_machine_type" {
  type        = string
  description = "Machine type of the extract_injections workers. Empty means the Dataflow default."
  default     = ""

  validation {
    condition     = var.extract_machine_type == "" || can(regex("^[a-z0-9]+-[a-z0-9-]+$", var.extract_machine_type))
    error_message = "The extract_machine_type must be empty or a Compute Engine machine type such as n2-standard-2."
  }
}

variable "consumer_group" {
  type        = string
  description = "Kafka consumer group of the extract_injections job. Empty means <name_prefix>-extract-injections. Changing it makes the job start again from the topic's retained offsets."
  default     = ""
}

variable "dead_letter_path" {
  type        = string
  description = "Optional gs:// prefix where publish_results also writes dead-letter files (passed to the function as DEAD_LETTER_PATH). Empty turns file dead letters off; the dead-letter topic is always used. The worker service account gets object access to that bucket."
  default     = ""

  validation {
    condition     = var.dead_letter_path == "" || can(regex("^gs://[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9](/.*)?$", var.dead_letter_path))
    error_message = "The dead_letter_path must be empty or a gs://BUCKET/PREFIX path."
  }
}

variable "template_image_tag" {
  type        = string
  description = "Tag of the two Flex Template images in the repository (publish-results and extract-injections). Use a new tag for every build, so that a running job never picks up a changed image by accident."
  default     = "v1"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.template_image_tag))
    error_message = "The template_image_tag must be a Docker tag: up to 128 letters, digits, underscores, dots or hyphens, not starting with a dot or hyphen."
  }
}

variable "workers_use_template_image" {
  type        = bool
  description = "Run Dataflow workers on the template image (sdk_container_image), which has the project's packages installed. When false, workers use Beam's default image and install the project from the staged setup.py at start-up, which needs PyPI access from the worker network."
  default     = true
}

variable "publish_template_gcs_path" {
  type        = string
  description = "gs:// path of the publish_results Flex Template spec. Empty means gs://<templates bucket>/templates/publish_results.json."
  default     = ""

  validation {
    condition     = var.publish_template_gcs_path == "" || can(regex("^gs://[^/]+/.+\\.json$", var.publish_template_gcs_path))
    error_message = "The publish_template_gcs_path must be empty or a gs:// path to a .json spec file."
  }
}

variable "extract_template_gcs_path" {
  type        = string
  description = "gs:// path of the extract_injections Flex Template spec. Empty means gs://<templates bucket>/templates/extract_injections.json."
  default     = ""

  validation {
    condition     = var.extract_template_gcs_path == "" || can(regex("^gs://[^/]+/.+\\.json$", var.extract_template_gcs_path))
    error_message = "The extract_template_gcs_path must be empty or a gs:// path to a .json spec file."
  }
}

# ---------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------

variable "create_kafka_cluster" {
  type        = bool
  description = "Create a Managed Service for Apache Kafka cluster and the four topics. When false, kafka_bootstrap_servers must point to an existing cluster where the topics already exist."
  default     = false
}

variable "kafka_bootstrap_servers" {
  type        = string
  description = "Comma-separated host:port list of the Kafka brokers. Required when create_kafka_cluster is false. When the cluster is created here, empty means its bootstrap address (see the NOTE in kafka.tf)."
  default     = ""

  validation {
    condition     = var.create_kafka_cluster || var.kafka_bootstrap_servers != ""
    error_message = "Set kafka_bootstrap_servers, or set create_kafka_cluster = true."
  }

  validation {
    condition     = var.kafka_bootstrap_servers == "" || can(regex("^[A-Za-z0-9.-]+:[0-9]+(,[A-Za-z0-9.-]+:[0-9]+)*$", var.kafka_bootstrap_servers))
    error_message = "The kafka_bootstrap_servers must be a comma-separated list of host:port pairs without spaces."
  }
}

variable "kafka_topics" {
  type = object({
    batch_results             = optional(string, "batch-job-results")
    batch_results_dead_letter = optional(string, "batch-job-results-dlq")
    prompt_injections         = optional(string, "prompt-injections")
    extract_dead_letter       = optional(string, "extract-injections-dlq")
  })
  description = "Kafka topic names: events published per result line, their dead letters, extracted prompt injections (compacted, key = sha256 of the string), and the extraction job's dead letters."
  default     = {}

  validation {
    condition     = alltrue([for name in values(var.kafka_topics) : can(regex("^[A-Za-z0-9._-]{1,249}$", name))])
    error_message = "Kafka topic names may contain only letters, digits, dots, underscores and hyphens, up to 249 characters."
  }
}

variable "kafka_client_properties" {
  type        = map(string)
  description = "Non-secret librdkafka properties passed to both pipelines as the kafka_config JSON object (for example client.id or compression.type). Credentials belong in the Secret Manager secret, never here."
  default     = {}

  validation {
    condition     = alltrue([for key in keys(var.kafka_client_properties) : !can(regex("(password|secret|token|jaas|credentials|keystore|key\\.pem|sasl\\.username|ssl\\.key)", key))])
    error_message = "The kafka_client_properties must not contain credentials (passwords, secrets, tokens, JAAS settings, SASL usernames, keystores or TLS keys); store those in the Kafka config secret."
  }
}

variable "kafka_config_secret_id" {
  type        = string
  description = "ID of the Secret Manager secret whose payload is a JSON object of librdkafka properties (for example SASL settings). Empty means <name_prefix>-kafka-client-config."
  default     = ""

  validation {
    condition     = var.kafka_config_secret_id == "" || can(regex("^[A-Za-z0-9_-]{1,255}$", var.kafka_config_secret_id))
    error_message = "The kafka_config_secret_id must be empty or 1 to 255 letters, digits, underscores or hyphens."
  }
}

variable "kafka_client_config_json" {
  type        = string
  description = "JSON object of secret librdkafka properties, written to the secret as a new version when kafka_client_config_version is at least 1. For Managed Service for Apache Kafka: {\"security.protocol\":\"SASL_SSL\",\"sasl.mechanism\":\"OAUTHBEARER\"}. Leave null to add secret versions outside Terraform."
  default     = null
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = var.kafka_client_config_json == null || can(keys(jsondecode(var.kafka_client_config_json)))
    error_message = "The kafka_client_config_json must be a JSON object of librdkafka properties."
  }
}

variable "kafka_client_config_version" {
  type        = number
  description = "0 means Terraform writes no secret version, and one is added outside Terraform. 1 or more makes Terraform write kafka_client_config_json to the secret; increase it by one to write a changed value."
  default     = 0

  validation {
    condition     = var.kafka_client_config_version >= 0 && floor(var.kafka_client_config_version) == var.kafka_client_config_version
    error_message = "The kafka_client_config_version must be a whole number, 0 or more."
  }
}

variable "grant_managed_kafka_client" {
  type        = bool
  description = "Grant the Dataflow worker service account roles/managedkafka.client on the project, which Managed Service for Apache Kafka requires for OAUTHBEARER (IAM) authentication. Set to false for other Kafka providers."
  default     = true
}

variable "kafka_cluster_id" {
  type        = string
  description = "ID of the Managed Service for Apache Kafka cluster created when create_kafka_cluster is true. Empty means <name_prefix>-kafka."
  default     = ""

  validation {
    condition     = var.kafka_cluster_id == "" || can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.kafka_cluster_id))
    error_message = "The kafka_cluster_id must be empty or 1 to 63 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "kafka_vcpu_count" {
  type        = number
  description = "vCPUs of the created Kafka cluster (at least 3)."
  default     = 3

  validation {
    condition     = var.kafka_vcpu_count >= 3
    error_message = "Managed Service for Apache Kafka needs at least 3 vCPUs."
  }
}

variable "kafka_memory_gib" {
  type        = number
  description = "Memory of the created Kafka cluster in GiB; between 1 and 8 GiB per vCPU."
  default     = 3

  validation {
    condition     = var.kafka_memory_gib >= 3 && floor(var.kafka_memory_gib) == var.kafka_memory_gib
    error_message = "The kafka_memory_gib must be a whole number, at least 3."
  }

  validation {
    condition     = var.kafka_memory_gib >= var.kafka_vcpu_count && var.kafka_memory_gib <= 8 * var.kafka_vcpu_count
    error_message = "The kafka_memory_gib must be between 1 and 8 GiB per vCPU (kafka_vcpu_count)."
  }
}

variable "kafka_partition_count" {
  type        = number
  description = "Partitions of each created topic. Partitions can be added later but never removed; the extraction job's parallelism is capped by this number."
  default     = 6

  validation {
    condition     = var.kafka_partition_count >= 1
    error_message = "The kafka_partition_count must be at least 1."
  }
}

variable "kafka_replication_factor" {
  type        = number
  description = "Replicas of each partition of the created topics."
  default     = 3

  validation {
    condition     = var.kafka_replication_factor >= 1 && var.kafka_replication_factor <= 3
    error_message = "The kafka_replication_factor must be between 1 and 3."
  }
}

variable "kafka_dead_letter_retention_days" {
  type        = number
  description = "Days that records stay on the two dead-letter topics created here, so that operators have time to inspect and replay them."
  default     = 14

  validation {
    condition     = var.kafka_dead_letter_retention_days >= 1
    error_message = "The kafka_dead_letter_retention_days must be at least 1."
  }
}
