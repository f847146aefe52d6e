#!/usr/bin/env bash
# The dependency rule of the code (docs/design.md, "Layers"), checked on the #include lines:
# each folder is one layer; a file may include headers of its own layer and of the layers its
# layer builds on, never one above or beside it; no include climbs with "../"; a public header
# (include/offload/) includes only public headers, only offload/mpi.hpp includes <mpi.h> and only
# offload/cuda.hpp CUDA's headers; an outside project (examples/) includes its own and public ones.
# Exits 1 listing every violation.
# Usage: scripts/check_layers.sh [ROOT]   (default: this checkout)
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
exec python3 - "$root" <<'PY'
import pathlib, re, sys

root = pathlib.Path(sys.argv[1])
# layer -> the layers it may include (besides itself)
ALLOWED = {
    "wire": set(),
    "scheduler": set(),
    "runtime": {"wire"},
    "transport": {"wire", "runtime"},
    "session": {"wire"},
    "kernels": {"wire"},
    "kernels_cuda": {"wire", "kernels"},
    "transmitter": {"wire", "runtime", "transport", "session", "kernels"},
    "receiver": {"wire", "runtime", "transport", "session", "scheduler", "kernels", "kernels_cuda"},
}
LIBRARY = set(ALLOWED)
ALLOWED["apps_common"] = LIBRARY
ALLOWED["apps"] = LIBRARY | {"apps_common"}
ALLOWED["examples"] = LIBRARY  # outside projects: public headers only (checked below)
# the public headers, by layer
PUBLIC = {
    "buffer.hpp": "wire", "dtype.hpp": "wire", "product.hpp": "wire", "wire.hpp": "wire", "stats.hpp": "wire",
    "runtime.hpp": "runtime",
    "mpi.hpp": "runtime",
    "link_emulation.hpp": "transport", "transport.hpp": "transport",
    "grpc.hpp": "transport",
    "kernel.hpp": "kernels", "plugin.hpp": "kernels", "cuda.hpp": "kernels", "model.hpp": "kernels",
    "transmitter.hpp": "transmitter", "receiver.hpp": "receiver", "device_profile.hpp": "receiver",
}
FOLDERS = [  # most specific first
    ("src/wire/", "wire"), ("src/runtime/", "runtime"), ("src/transport/", "transport"),
    ("src/session/", "session"), ("src/scheduler/", "scheduler"), ("src/transmitter/", "transmitter"), ("src/receiver/", "receiver"),
    ("kernels/cuda/", "kernels_cuda"), ("kernels/", "kernels"),
    ("apps/common/", "apps_common"), ("apps/", "apps"), ("tests/", "tests"), ("scripts/", "tests"),
    ("examples/", "examples"),
]

def layer_of_path(rel):
    if rel.startswith("include/offload/"):
        name = rel[len("include/offload/"):]
        return PUBLIC.get(name, "?public:" + name)
    for prefix, layer in FOLDERS:
        if rel.startswith(prefix):
            return layer
    return None

include = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
problems = []
checked = 0
sources = [p for ext in ("*.hpp", "*.cpp", "*.cuh", "*.cu", "*.h") for p in root.rglob(ext)]
for path in sorted(sources):
    rel = path.relative_to(root).as_posix()
    if rel.startswith(("build", ".deps/", ".git/")) or "/build" in rel:
        continue
    me = layer_of_path(rel)
    checked += me is not None
    if me is None:
        continue
    if me.startswith("?public:"):
        problems.append(f"{rel}: a public header no layer owns (add it to PUBLIC in scripts/check_layers.sh)")
        continue
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        m = include.match(line)
        if not m:
            continue
        kind, target = m.groups()
        where = f"{rel}:{n}: #include {kind}{target}{'>' if kind == '<' else kind}"
        if ".." in pathlib.PurePosixPath(target).parts:
            problems.append(f"{where}: climbs out of its folder with '..'; include by the path from the project root")
            continue
        if kind == "<":
            if target == "mpi.h" and rel.startswith("include/") and rel != "include/offload/mpi.hpp":
                problems.append(f"{where}: only offload/mpi.hpp may include <mpi.h> (MPI-free users include the rest)")
                continue
            if target.startswith("cuda") and rel.startswith("include/") and rel != "include/offload/cuda.hpp":
                problems.append(f"{where}: only offload/cuda.hpp may include CUDA's headers (g++ users include the rest)")
                continue
            if not target.startswith("offload/"):
                continue  # system and third-party headers
            if target.startswith("offload/detail/"):
                problems.append(f"{where}: there is no offload/detail; private headers live in their layer's folder")
                continue
            theirs = PUBLIC.get(target[len("offload/"):])
            if theirs is None:
                problems.append(f"{where}: not a public header")
                continue
        else:
            if rel.startswith("include/"):
                problems.append(f"{where}: a public header includes a private one")
                continue
            if me == "examples":
                own = (path.parent / target).resolve()
                if own.exists() and own.is_relative_to((root / "examples").resolve()):
                    continue  # the example project's own headers
                problems.append(f"{where}: an outside project reaches into the library's private headers")
                continue
            if "/" not in target:  # same folder
                if not (path.parent / target).exists():
                    problems.append(f"{where}: no such header beside it (other folders: use the path from the project root)")
                continue
            if not (root / target).exists():
                problems.append(f"{where}: no such file under the project root")
                continue
            theirs = layer_of_path(target)
            if theirs is None:
                problems.append(f"{where}: outside every layer")
                continue
        if me == "tests" or theirs == me or theirs in ALLOWED.get(me, set()):
            continue
        problems.append(f"{where}: layer '{me}' may not include layer '{theirs}' "
                        f"(it builds on: {', '.join(sorted(ALLOWED[me])) or 'nothing'})")

for p in problems:
    print(p)

if problems:
    print(f"check_layers: {len(problems)} violation(s) in {checked} files")
    sys.exit(1)
print(f"check_layers: {checked} files, every include follows the layers")
PY
