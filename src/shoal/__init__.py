"""Shoal — self-hosted serverless compute that is AWS Lambda at the wire."""

__version__ = "0.1.0"
