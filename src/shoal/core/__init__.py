"""Core contract: dataclasses, names/ARNs, errors, clock, ids. Standard library only."""
