#!/usr/bin/env bash
# docs/writing-kernels.md's worked example, as written there: extracts scale.hpp, scale.cpp,
# scale.cu, plugin.cpp and the CMake lines (the plugin's too) from the page, builds them against the install the
# example.build fixture made (PREFIX), and runs offload-run with the plugin, validated.
#   doc_kernel.sh PREFIX OUT OFFLOAD_RUN MPIEXEC [MPIEXEC ARGS...]
set -euo pipefail
prefix=$1 out=$2 run=$3
shift 3
doc=$(cd "$(dirname "$0")/../.." && pwd)/docs/writing-kernels.md
rm -rf "$out"
mkdir -p "$out/src"
/usr/bin/python3 - "$doc" "$out/src" <<'PY'
import pathlib, re, sys
text = pathlib.Path(sys.argv[1]).read_text()
out = pathlib.Path(sys.argv[2])
blocks = re.findall(r"(?:`([\w.]+)`[^\n]*:\n)?```(\w+)\n(.*?)```", text, re.S)
files = {name: body for name, lang, body in blocks if name}
for name in ("scale.hpp", "scale.cpp", "scale.cu", "plugin.cpp"):
    if name not in files:
        sys.exit(f"doc_kernel: docs/writing-kernels.md has no code block for {name}")
    (out / name).write_text(files[name])
cmake = [body for name, lang, body in blocks if lang == "cmake" and "scale_kernel" in body]
if len(cmake) != 1 or "scale_plugin" not in cmake[0]:
    sys.exit("doc_kernel: expected one CMake block building scale_kernel and scale_plugin")
(out / "CMakeLists.txt").write_text(
    "cmake_minimum_required(VERSION 3.25)\nproject(scale LANGUAGES CXX)\nset(CMAKE_CXX_STANDARD 20)\n" + cmake[0])
print("doc_kernel: extracted", ", ".join(sorted(files)))
PY
cmake -S "$out/src" -B "$out/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$out/build" >/dev/null
timeout -s KILL 120 "$@" -np 3 "$run" --receivers 1 --plugin "$out/build/scale_plugin.so" --kernel scale \
  --events 50 --validate
