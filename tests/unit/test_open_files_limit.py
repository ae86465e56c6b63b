"""The server takes the hard limit on open files: every live environment holds a few of its descriptors."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

PROBE = """
import resource
from shoal.server import raise_open_files_limit

resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
print(raise_open_files_limit(), *resource.getrlimit(resource.RLIMIT_NOFILE))
"""


@pytest.mark.parametrize("soft", [256, 1024])
def test_the_soft_limit_is_raised_to_the_hard_one(soft):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = min(hard, 4096) if hard != resource.RLIM_INFINITY else 4096
    if hard <= soft:
        pytest.skip(f"this process's hard limit ({hard}) leaves nothing to raise from {soft}")
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(soft=soft, hard=hard)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert [int(v) for v in out] == [hard, hard, hard]
