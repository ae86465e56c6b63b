"""Runtimes: runtime id → how to start it. Language bootstraps live in ``bootstraps/`` and import nothing
from ``shoal``; built-in runtime families register through the same extension point as plugins."""
