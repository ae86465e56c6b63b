"""Shared fixtures for integration tests: the sandbox backends, each cleaned up after use."""

from __future__ import annotations

import pytest

from shoal.sandbox import namespace
from shoal.sandbox.namespace import NamespaceBackend
from shoal.sandbox.process import ProcessBackend

NS_OK, NS_WHY = namespace.available()
needs_namespace = pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable on this host: {NS_WHY}")


def _process() -> ProcessBackend:
    return ProcessBackend()


def _namespace() -> NamespaceBackend:
    return NamespaceBackend()


BACKENDS = [
    pytest.param(_process, id="process"),
    pytest.param(_namespace, id="namespace", marks=needs_namespace),
]


@pytest.fixture(params=BACKENDS)
def sandbox_backend(request):
    """Each sandbox backend in turn; the namespace one removes its cgroups at the end."""
    backend = request.param()
    yield backend
    closer = getattr(backend, "close", None)
    if closer is not None:
        closer()


@pytest.fixture
def namespace_backend():
    if not NS_OK:
        pytest.skip(f"namespace sandbox unavailable on this host: {NS_WHY}")
    backend = NamespaceBackend()
    yield backend
    backend.close()
