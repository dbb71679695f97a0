"""Every shipped model goes through `qnnflow build` bit-exact in every available stage."""
from __future__ import annotations

import pytest

from flow.config import BuildConfig
from flow.pipeline import run_build
from models.zoo import list_shipped

SHIPPED = [r["name"] for r in list_shipped() if r["buildable"]]


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_builds_bit_exact(name, tmp_path):
    rep = run_build(BuildConfig(out=tmp_path / "b", model=name, samples=300))
    v = rep["verify"]
    explained = v.get("explained", {})
    for stage, count in v["mismatches"].items():
        unexplained = explained.get(stage, {}).get("unexplained", count) if stage in explained else count
        assert unexplained == 0, (stage, count, v["first_mismatch"].get(stage))
    assert {"brevitas", "streamlined", "hw_python", "intsim"} <= set(v["mismatches"])
    if not rep["hls_layers"]:
        assert "rtlsim" in v["mismatches"] and "rtlsim_stalls" in v["mismatches"]
