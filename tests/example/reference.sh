#!/usr/bin/env bash
# The EdgeConv CPU implementation against examples/edgeconv/reference.py (numpy, float64).
# Skips (77), saying why, where Debian's python3-numpy is missing (scripts/bootstrap.sh installs
# it; the GPU machine may not have it).
#   reference.sh EXAMPLE_BUILD_DIR OUT_FILE
set -euo pipefail
build=$1 out=$2
if ! why=$(/usr/bin/python3 -c 'import numpy' 2>&1); then
  echo "SKIP: /usr/bin/python3 with numpy is needed (Debian: python3-numpy): ${why##*$'\n'}"
  exit 77
fi
"$build/edgeconv_dump" "$out" 42 64
/usr/bin/python3 "$(dirname "$0")/../../examples/edgeconv/reference.py" "$out"
