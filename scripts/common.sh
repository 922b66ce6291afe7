# Shared by scripts/demo and scripts/test: set up, then configure and build one preset.
# Source it; it defines bulwark_build PRESET [TARGET...].
set -euo pipefail
BULWARK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BULWARK_HOME=${BULWARK_HOME:-"$HOME/.cache/bulwark"}
export BULWARK_VENV=${BULWARK_VENV:-"$BULWARK_HOME/venv"}

"$BULWARK_ROOT/scripts/setup"

export PATH="$BULWARK_VENV/bin:$PATH"
# ccache hits across fresh clones: paths are made relative to the clone, the working directory is not hashed.
export CCACHE_BASEDIR="$BULWARK_ROOT"
export CCACHE_NOHASHDIR=true
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}

bulwark_build() {
  local preset=$1; shift
  cd "$BULWARK_ROOT"
  if [[ ! -f "build/$preset/build.ninja" ]]; then
    cmake --preset "$preset" >/dev/null
  fi
  cmake --build --preset "$preset" ${1:+--target "$@"}
}
