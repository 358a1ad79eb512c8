"""The launcher Cloud Function: one publish job per finalized result file generation.

Modules:
    main: the CloudEvent entry point `on_result_finalized`.
    config: environment variables, checked at start-up.
    storage_events: the Cloud Storage object named by a finalize event.
    result_names: which objects are result files.
    job_names: deterministic Dataflow job names.
    handler: one event from check to launch.
    dataflow_launcher: Flex Template launches on Dataflow.
    local_launcher: DirectRunner jobs in child processes, for local runs.

The package imports nothing from `pipelines` or `transforms`, so it deploys
on its own with `requirements.txt`.
"""
