#!/usr/bin/env bash
# Builds {{name}}.wasm, a wasmbgp plugin of the world `{{world}}` written in {{lang_name}}.
# Installs the toolchain first when it is missing (see toolchain.sh), into
# $WASMBGP_TOOLS (default ~/.cache/wasmbgp/tools). Quiet on success.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export WASMBGP_TOOLS="${WASMBGP_TOOLS:-$HOME/.cache/wasmbgp/tools}"
# shellcheck source=toolchain.sh
source ./toolchain.sh
{{lang}}_tools_install
{{build_command}}
