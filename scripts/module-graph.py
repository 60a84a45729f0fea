#!/usr/bin/env python3
"""The runtime's module import graph, and its cycles.

Reads `crate::a::…` and `super::…` paths in runtime/src (tests blocks
included; doc comments not) and prints one line per module: the modules it
uses. Then lists every import circle between files (strongly connected
components of more than one module) and exits 1 if there is one. A path
to a module's own parent (`super::x` in a child) is not an edge: the parent
declares the child, and that nesting is not a circle between concepts.

    python3 scripts/module-graph.py            # runtime/src
    python3 scripts/module-graph.py --dot      # Graphviz, for `dot -Tpng`
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "runtime" / "src"


def module_of(path):
    """`quant/incremental.rs` -> `quant::incremental`; `quant/mod.rs` -> `quant`."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return "::".join(parts) or "crate"


def main():
    files = sorted(SRC.rglob("*.rs"))
    modules = {module_of(f): f for f in files}
    edges = {m: set() for m in modules}
    for module, path in modules.items():
        parent = module.rsplit("::", 1)[0] if "::" in module else "crate"
        code = "\n".join(line.split("//", 1)[0] for line in path.read_text().splitlines())
        # Grouped imports (`super::{a, b::c}`) as one path per item.
        paths = []
        for m in re.finditer(r"\b(crate|super)((?:::\w+)*)::\{([^{}]*)\}", code):
            for item in m.group(3).split(","):
                item = item.strip().split(" as ")[0].strip()
                if re.fullmatch(r"\w+(?:::\w+)*|\*", item) and item not in ("self", "*"):
                    paths.append((m.group(1), m.group(2) + "::" + item))
                elif item == "self" and m.group(2):
                    paths.append((m.group(1), m.group(2)))
        for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", code):
            paths.append((m.group(1), m.group(2)))
        for root, rest in paths:
            if True:
                base = [] if root == "crate" else ([] if parent == "crate" else parent.split("::"))
                names = base + rest.strip(":").split("::")
                # The longest prefix that is a module of ours.
                for n in range(len(names), 0, -1):
                    target = "::".join(names[:n])
                    if target in modules:
                        if target != module and not module.startswith(target + "::"):
                            edges[module].add(target)
                        break
    if "--dot" in sys.argv:
        print("digraph runtime {")
        for m, ts in sorted(edges.items()):
            for t in sorted(ts):
                print(f'  "{m}" -> "{t}";')
        print("}")
    else:
        for m, ts in sorted(edges.items()):
            print(f"{m} -> {', '.join(sorted(ts)) or '(nothing)'}")

    # Tarjan's strongly connected components.
    index, low, stack, on, sccs = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    if sccs:
        for scc in sccs:
            print("import circle: " + " <-> ".join(scc), file=sys.stderr)
        sys.exit(1)
    print(f"{len(modules)} modules, {sum(map(len, edges.values()))} imports, no import circle",
          file=sys.stderr)


if __name__ == "__main__":
    main()
