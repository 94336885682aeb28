"""One training job: the request (typed, described: the Prefect UI form), its job file and the
AzureML component's inputs, where its files live, the plain steps from request to launch plan, their
thin Prefect tasks, and the result."""
