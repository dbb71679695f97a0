#!/bin/bash
# Sources the mounted Vivado (and Vitis HLS) settings for $VIVADO_VERSION, then runs the command.
# Layout of an AMD installation under $XILINX_ROOT (default /tools/Xilinx):
#   2022.2: Vivado/2022.2, Vitis_HLS/2022.2      2024.2: Vivado/2024.2, Vitis/2024.2
set -e
XILINX_ROOT="${XILINX_ROOT:-/tools/Xilinx}"
VIVADO_VERSION="${VIVADO_VERSION:-2022.2}"
vivado_settings="$XILINX_ROOT/Vivado/$VIVADO_VERSION/settings64.sh"
if [ -f "$vivado_settings" ]; then
    # shellcheck disable=SC1090
    source "$vivado_settings"
    for hls in "$XILINX_ROOT/Vitis_HLS/$VIVADO_VERSION" "$XILINX_ROOT/Vitis/$VIVADO_VERSION"; do
        if [ -f "$hls/settings64.sh" ]; then
            # shellcheck disable=SC1090
            source "$hls/settings64.sh"
            break
        fi
    done
else
    echo "qnnflow image: no Vivado at $vivado_settings (mount it: -v /tools/Xilinx:/tools/Xilinx:ro," \
         "set VIVADO_VERSION=2022.2 or 2024.2); qnnflow bitstream will say what is missing" >&2
fi
exec "$@"
