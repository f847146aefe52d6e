#!/usr/bin/env bash
# The dependency rule of the code (docs/design.md, "Layers"), checked on the #include lines:
# each folder is one layer; a file may include headers of its own layer and of the layers its
# layer builds on, never one above or beside it; no include climbs with "../"; a public header
# (include/offload/) includes only public headers, only offload/mpi.hpp includes <mpi.h> and only
# offload/cuda.hpp CUDA's headers; an outside project (examples/) includes its own and public ones.
# The graph itself is declared once, in cmake/layers.json; the same run checks each layer's CMake
# link lists against it and that README.md and docs/design.md show it (the block between their
# "layers" markers is what --graph prints).
# Exits 1 listing every violation.
# Usage: scripts/check_layers.sh [ROOT]   (default: this checkout)
#        scripts/check_layers.sh --graph  (prints the graph block of README.md and docs/design.md)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mode=
if [ "${1:-}" = --graph ]; then
  mode=--graph
  shift
fi
root=${1:-$here}
exec python3 - "$root" "$mode" "$here" <<'PY'
import json, pathlib, re, sys

root = pathlib.Path(sys.argv[1])
graph_only = len(sys.argv) > 2 and sys.argv[2] == "--graph"
# The layer graph, declared once (cmake/layers.json): from the checked tree, else this checkout's.
spec_path = root / "cmake/layers.json"
if not spec_path.exists():
    spec_path = pathlib.Path(sys.argv[3] if len(sys.argv) > 3 else ".") / "cmake/layers.json"
spec = json.loads(spec_path.read_text())
LAYERS = spec["layers"]
ALLOWED = {l["name"]: set(l["uses"]) for l in LAYERS}  # layer -> the layers it may include (besides itself)
LIBRARY = set(ALLOWED)
ALLOWED["apps_common"] = LIBRARY
ALLOWED["apps"] = LIBRARY | {"apps_common"}
ALLOWED["examples"] = LIBRARY  # outside projects: public headers only (checked below)
PUBLIC = spec["public_headers"]  # the public headers, by layer
FOLDERS = sorted([(l["folder"], l["name"]) for l in LAYERS] +
                 [("apps/common/", "apps_common"), ("apps/", "apps"), ("tests/", "tests"), ("scripts/", "tests"),
                  ("examples/", "examples")], key=lambda f: -len(f[0]))  # most specific first

def graph_text():
    """The block README.md and docs/design.md hold, between their layers markers."""
    width = max(len(l["name"]) for l in LAYERS)
    lines = [f"{l['name']:<{width}}  uses {', '.join(l['uses']) or 'nothing'}" for l in LAYERS]
    return "\n".join(lines)

if graph_only:
    print(graph_text())
    sys.exit(0)

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

# The CMake link lists: a layer's target links only the targets of the layers it uses.
targets = {l["target"]: l["name"] for l in LAYERS}
token = re.compile(r"\boffload_[a-z_]+\b")
for cml in sorted(set(root.glob("src/**/CMakeLists.txt")) | set(root.glob("kernels/**/CMakeLists.txt"))):
    text = re.sub(r"#[^\n]*", "", cml.read_text())
    for call in re.finditer(r"(offload_add_layer|target_link_libraries)\((.*?)\)\s*(?=\n)", text, re.S):
        first = call.group(2).split()[0] if call.group(2).split() else ""
        if first not in targets:  # (e.g. the whole library's INTERFACE target)
            continue
        me = targets[first]
        words = [first] + token.findall(call.group(2)[call.group(2).index(first) + len(first):])
        for dep in words[1:]:
            theirs = targets.get(dep)
            if theirs is None or theirs == me or theirs in ALLOWED[me]:
                continue
            problems.append(f"{cml.relative_to(root).as_posix()}: target {words[0]} links {dep}: layer '{me}' may "
                            f"not use layer '{theirs}' (it builds on: {', '.join(sorted(ALLOWED[me])) or 'nothing'}; "
                            f"cmake/layers.json)")
# The documents show the graph as declared.
block = re.compile(r"<!-- layers:begin -->\n```\n(.*?)\n```\n<!-- layers:end -->", re.S)
for doc in ("README.md", "docs/design.md"):
    path = root / doc
    if not path.exists():
        continue
    m = block.search(path.read_text())
    if m is None:
        problems.append(f"{doc}: no layer graph between <!-- layers:begin --> and <!-- layers:end -->")
    elif m.group(1) != graph_text():
        problems.append(f"{doc}: its layer graph differs from cmake/layers.json (scripts/check_layers.sh --graph "
                        f"prints it)")

for p in problems:
    print(p)

if problems:
    print(f"check_layers: {len(problems)} violation(s) in {checked} files")
    sys.exit(1)
print(f"check_layers: {checked} files, every include follows the layers")
PY
