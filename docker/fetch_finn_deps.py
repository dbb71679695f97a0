"""Fetch FINN's non-Python dependencies (finn-hlslib, board files) at the commits FINN pins.

Runs at `docker build` (network access): FINN's own updater (finn.interface.manage_deps)
with FINN's own definitions file, so the pins are finn-plus 1.6.1's. The `finn deps update`
command would also check for Vivado's simulator, which the image does not have.
Usage: python fetch_finn_deps.py /opt/finn_deps
"""
import sys
from pathlib import Path

import finn.interface
from finn.interface.manage_deps import DependencyUpdater

target = Path(sys.argv[1] if len(sys.argv) > 1 else "/opt/finn_deps")
definitions = Path(finn.interface.__file__).parent / "external_dependencies.yaml"
DependencyUpdater(target, definitions, git_timeout_s=600, non_interactive=True).update()
missing = [p for p in ("finn-hlslib", "board_files") if not (target / p).is_dir()]
if missing:
    sys.exit(f"error: FINN dependencies missing after the update: {', '.join(missing)} (in {target})")
print(f"FINN dependencies in {target}: {', '.join(sorted(p.name for p in target.iterdir()))}")
