"""The places where FINN assumes a Vivado installation, contained in one module.

For finn-plus 1.6.1 they are:
1. `finn.builder.build_dataflow_steps` imports `finn.xsi`, which raises OSError at
   import without XILINX_VIVADO (and needs psutil). We never import that module:
   our steps call FINN's transformations and analyses directly.
2. `build_dataflow_cfg` calls `get_vivado_root()` after the last step. We do not use
   FINN's builder loop; `flow.pipeline.run_build` runs our own step list.
3. Code generation needs FINN's global settings (FINN_BUILD_DIR). `finn_build_dir`
   points them at a folder inside our build, so generated code lives with the build.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def finn_build_dir(path: Path):
    """Point FINN's code generation at `path` for the duration of the block."""
    import finn.util.settings as finn_settings

    path.mkdir(parents=True, exist_ok=True)
    old_env = os.environ.get("FINN_BUILD_DIR")
    old_settings = finn_settings._SETTINGS
    os.environ["FINN_BUILD_DIR"] = str(path.resolve())
    # FINN caches its settings on first use; rebuild them from the environment.
    finn_settings._SETTINGS = None
    try:
        yield path
    finally:
        finn_settings._SETTINGS = old_settings
        if old_env is None:
            os.environ.pop("FINN_BUILD_DIR", None)
        else:
            os.environ["FINN_BUILD_DIR"] = old_env
