"""The hot path: resolve the qualifier, acquire an environment, run, record."""
