"""The only code that talks to the MLflow model registry.

What the operator uses (`service.RegistryService` bundles them):

    settings.RegistrySettings   SEAWAY_REGISTRY_* environment, built once in main()
    client.MlflowRegistryClient the MLflow REST seam: counted calls, capped retries
    resolve.Resolver            (model, alias | version) -> model.ResolvedModel,
                                after the allow-list (locations.LocationPolicy)
    watch.RegistryWatcher       which tracked (model, alias) pairs moved; WatchLoop
    webhooks.WebhookReceiver    MLflow's webhooks, HMAC-verified, as wake-up calls
    deployments                 the seaway.serving.<ns>.<name> version tags (pure)
    writeback.DeploymentRecorder keeps those tags true: one read, writes only what differs
    errors                      what can go wrong, transient or not, and what to do

Pure, importable without MLflow: errors, model, locations, mlmodel,
deployments, digest, settings, watch (logic), webhooks (verification).
MLflow is imported inside the calls that need it. Nothing here loads a model,
except `check`, which `seaway registry promote --check` runs in a separate
process; `cli`, `register` and `check` are for people, not the operator.
"""
