"""The benchmarks are scripts, not an installed package: their modules import from the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _run_bench(
    script: str, *args: str, timeout: float, env: Mapping[str, str] | None = None
) -> str:
    """Run ``bench/{script}`` from the checkout as a user would; what it printed, once it
    exited 0 (else the test fails with all it printed)."""
    done = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=ROOT,
        env=None if env is None else {**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def run_bench() -> Callable[..., str]:
    return _run_bench
