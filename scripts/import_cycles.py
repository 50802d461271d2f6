#!/usr/bin/env python3
"""Fails when the crate's files import each other in a circle.

The graph is drawn file by file: an edge A -> B when a path in A (`use crate::…`, `use super::…`,
`use self::…`, a `use` of a child module, or an inline `crate::…` / `super::…` / `self::…` path in
code) names an item of the module in file B. A path resolves to the deepest module that has a file
of its own (`src/a/b.rs` or `src/a/b/mod.rs`), so `crate::actors::CollectorRegistry` lands on
`src/actors.rs` (whose `pub use registry::…` then leads on to `src/actors/registry.rs`).
`mod x;` declarations are containment, not imports, and are not edges. Test modules count like any
other code. Comments and string literals are ignored.

Usage: scripts/import_cycles.py [SRC_DIR]   (default: src; `src/main.rs` and `src/bin/` are separate crates)
       scripts/import_cycles.py --self-test  (proves it finds a planted cycle and passes a clean tree)
"""
import pathlib
import re
import sys
import tempfile

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|::|[{};,*]|\S")


def strip_comments_and_strings(text):
    """Replaces comments, string and char literals with spaces (line numbers are kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif (raw := re.match(r'b?r(#*)"', text[i:])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            closing = '"' + raw.group(1)
            end = text.find(closing, i + raw.end())
            end = n if end < 0 else end + len(closing)
            out.append(" " + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(" " + "\n" * text.count("\n", i, j + 1))
            i = j + 1
        elif c == "'" and (char := re.match(r"'(\\.[^']*|[^\\'])'", text[i:])):
            out.append(" ")
            i += char.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_files(src):
    """Module path (tuple of names) -> file, for every file of the library crate."""
    files = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if rel.parts[0] == "bin" or rel == pathlib.Path("main.rs"):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts == ["lib"]:
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        files[tuple(parts)] = path
    return files


def use_paths(tokens, start):
    """Expands the use tree starting at tokens[start] into (segments, name bound) pairs; returns them
    and the index after the `;`."""
    paths = []

    def tree(i, prefix):
        segments = list(prefix)
        while i < len(tokens):
            token = tokens[i]
            if token == "{":
                i += 1
                while tokens[i] != "}":
                    i = tree(i, segments)
                    if tokens[i] == ",":
                        i += 1
                return i + 1
            if token == "*":
                paths.append((segments, None))
                return i + 1
            if token in (",", "}", ";"):
                if segments:
                    bound = segments[-1] if segments[-1] != "self" else segments[-2]
                    paths.append((segments, bound))
                return i
            if token == "as":
                paths.append((segments, tokens[i + 1]))
                return i + 2
            if token == "::":
                i += 1
                continue
            segments = segments + [token]
            i += 1
        return i

    i = tree(start, [])
    while i < len(tokens) and tokens[i] != ";":
        i += 1
    return paths, i + 1


class Crate:
    def __init__(self, src):
        self.files = module_files(src)
        self.tokens = {
            path: TOKEN.findall(strip_comments_and_strings(path.read_text(encoding="utf-8")))
            for path in self.files.values()
        }
        # file -> name -> (segments, module they are written in): what its `pub use` passes through.
        self.reexports = {path: {} for path in self.files.values()}
        self.uses = {path: [] for path in self.files.values()}
        for module, path in self.files.items():
            self.scan(path, module)

    def scan(self, path, module):
        """Collects the file's paths: `pub use` re-exports (not edges themselves) and everything else."""
        tokens = self.tokens[path]
        inline = []  # (name, brace depth at which it opened)
        depth = 0
        i = 0
        while i < len(tokens):
            token = tokens[i]
            current = tuple(module) + tuple(name for name, _ in inline)
            if token == "mod" and i + 2 < len(tokens) and tokens[i + 2] == "{":
                inline.append((tokens[i + 1], depth))
                depth += 1
                i += 3
                continue
            if token == "{":
                depth += 1
            elif token == "}":
                depth -= 1
                if inline and inline[-1][1] == depth:
                    inline.pop()
            elif token == "use" and (i == 0 or tokens[i - 1] != "::"):
                public = i > 0 and (tokens[i - 1] == "pub" or (tokens[i - 1] == ")" and "pub" in tokens[max(0, i - 5):i]))
                paths, i = use_paths(tokens, i + 1)
                for segments, bound in paths:
                    if public and bound is not None and not inline:
                        self.reexports[path][bound] = (segments, current)
                    else:
                        self.uses[path].append((segments, current))
                continue
            elif token in ("crate", "super", "self") and i + 1 < len(tokens) and tokens[i + 1] == "::":
                if i > 0 and tokens[i - 1] == "::":
                    i += 1
                    continue
                segments = [token]
                j = i + 2
                while j < len(tokens) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tokens[j]):
                    segments.append(tokens[j])
                    if j + 1 < len(tokens) and tokens[j + 1] == "::":
                        j += 2
                    else:
                        j += 1
                        break
                self.uses[path].append((segments, current))
                i = j
                continue
            i += 1

    def resolve(self, segments, current, hops=0):
        """The file defining the item `segments` names from module `current` (re-exports followed),
        or None (another crate)."""
        if segments[0] == "crate":
            base, rest = (), segments[1:]
        elif segments[0] in ("super", "self"):
            base, rest = tuple(current), list(segments)
            while rest and rest[0] in ("super", "self"):
                if rest[0] == "super":
                    base = base[:-1]
                rest = rest[1:]
        elif tuple(current) + (segments[0],) in self.files:
            # `use registry::X` in `actors.rs`: a child module by its bare name.
            base, rest = tuple(current), segments
        else:
            return None
        resolved = base + tuple(segment for segment in rest if segment != "self")
        for length in range(len(resolved), -1, -1):
            if resolved[:length] in self.files:
                target = self.files[resolved[:length]]
                remaining = resolved[length:]
                if remaining and remaining[0] in self.reexports[target] and hops < 16:
                    through, written_in = self.reexports[target][remaining[0]]
                    return self.resolve(list(through) + list(remaining[1:]), written_in, hops + 1) or target
                return target
        return None

    def graph(self):
        graph = {}
        for path, uses in self.uses.items():
            targets = (self.resolve(segments, current) for segments, current in uses)
            graph[path] = {target for target in targets if target is not None and target != path}
        return graph


def find_cycles(graph):
    """Strongly connected components with more than one file (Tarjan, iterative)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def one_cycle(graph, component):
    """A concrete circle inside a component, for the message."""
    members = set(component)
    start = component[0]
    path, seen = [start], {start}
    node = start
    while True:
        following = sorted(child for child in graph[node] if child in members)
        if start in following and len(path) > 1:
            return path + [start]
        unvisited = [child for child in following if child not in seen]
        if not unvisited:
            return path + [following[0]]
        node = unvisited[0]
        path.append(node)
        seen.add(node)


def check(src):
    crate = Crate(src)
    graph = crate.graph()
    files = crate.files
    cycles = find_cycles(graph)
    for component in cycles:
        circle = " -> ".join(str(path.relative_to(src)) for path in one_cycle(graph, component))
        print(f"import cycle among {len(component)} files: {circle}", file=sys.stderr)
    return len(cycles), sum(len(edges) for edges in graph.values()), len(files)


def self_test():
    planted = {
        "lib.rs": "pub mod a;\npub mod b;\n",
        "a.rs": "pub mod inner;\nuse crate::b::Thing; // crate::c would be a comment\npub struct Other;\n",
        "a/inner.rs": "pub fn f() { let _ = \"crate::b::Thing\"; }\n",
        "b.rs": "pub struct Thing;\nfn g() { let _ = super::a::Other; }\n#[cfg(test)]\nmod tests { use super::*; }\n",
    }
    clean = dict(planted, **{"b.rs": "pub struct Thing;\n#[cfg(test)]\nmod tests { use super::*; }\n"})
    grouped = dict(clean, **{"a/inner.rs": "use crate::{a::Other, b::{self, Thing}};\n", "b.rs": "use self::x::Y;\nmod x { pub struct Y; fn h() { let _ = crate::a::inner::f; } }\n"})
    results = []
    for name, tree in (("planted", planted), ("clean", clean), ("grouped", grouped)):
        with tempfile.TemporaryDirectory() as directory:
            root = pathlib.Path(directory)
            for rel, text in tree.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text)
            print(f"self-test {name}:", file=sys.stderr)
            results.append(check(root)[0])
    # planted: a -> b (use) and b -> a (inline super::a); clean: no way back; grouped: b -> a/inner -> a -> b.
    if results != [1, 0, 1]:
        print(f"self-test failed: cycles found per tree {results}, expected [1, 0, 1]", file=sys.stderr)
        return 1
    print("self-test passed: the planted cycles are found and the clean tree passes", file=sys.stderr)
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    src = pathlib.Path(argv[1] if len(argv) > 1 else pathlib.Path(__file__).resolve().parent.parent / "src")
    cycles, edges, files = check(src)
    if cycles:
        return 1
    print(f"no import cycles ({files} files, {edges} file-to-file imports)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
