# Variables for the checkov scan in tools/terraform_check.sh. They switch on
# every optional resource, so that checkov evaluates all of them.
project_id                  = "example-project"
results_bucket_name         = "example-project-vertex-results"
create_results_bucket       = true
create_kafka_cluster        = true
dead_letter_path            = "gs://example-project-dead-letters/publish_results"
kafka_client_config_version = 1
