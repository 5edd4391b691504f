#!/usr/bin/env bash
# The GPU check of ../shared/GPU.md in one call; see bench/gpu_check.py.
#   bench/gpu_check.sh [--out DIR]    on a GPU machine (default DIR: $OUT)
#   bench/gpu_check.sh --dry-run      without a GPU: cuda-sim, PyCUDA's build only printed
cd "$(dirname "$0")/.." || exit 1
exec "${PYTHON:-python3}" bench/gpu_check.py "$@"
