"""The project's modules import each other without a circle, read from their own import
statements (those inside functions too): each package's modules stand on those below."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "ui", "export", "cluster", "benchmarks")


def modules() -> dict[str, Path]:
    """Dotted name -> file, for app.py and every module of the packages."""
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `path` imports: `from pkg import mod` names pkg.mod where that is a
    module, else pkg itself."""
    named = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                named.add(sub if sub in known else node.module)
    return {name for name in named if name in known}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import loop found by a depth-first walk, as the modules in it."""
    found, state = [], {}  # state: 1 on the walk's path, 2 done

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                found.append(path[path.index(imported):] + [imported])
            elif imported not in state:
                walk(imported, [*path, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    return found


def test_the_walk_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    assert len(graph) > 50 and graph["pipelines.registry"]  # the graph was read
    assert circles(graph) == []


def test_pipelines_serve_models_and_import_no_layer_above():
    # The web app (ui/, app.py), Ray (cluster/), the exporter and the benchmarks stand on
    # pipelines/; its settings are the serving ones, the web server's live in ui/.
    known = modules()
    above = ("app", "ui", "cluster", "export", "benchmarks")
    reaching_up = {name: sorted(imported for imported in imports(path, known)
                                if imported.split(".")[0] in above)
                   for name, path in known.items() if name.startswith("pipelines")}
    assert {name: up for name, up in reaching_up.items() if up} == {}
