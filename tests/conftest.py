"""Shared fixtures: one small demo build reused by the tests that only read it."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore")


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory) -> Path:
    """tfc-w2a2 (shipped checkpoint) built and verified on 300 MNIST test images."""
    from flow.pipeline import run_build
    from flow.config import BuildConfig

    out = tmp_path_factory.mktemp("demo") / "build"
    run_build(BuildConfig(out=out, model="tfc-w2a2", samples=300))
    return out
