"""Mechanism: run an argv under limits, in an isolated view. Knows nothing of functions."""
