"""etl: transformer runtimes (local processes, Kubernetes) and communicators."""
