"""The layout holds: data flows one way, no import cycles, modules a reader can hold.

Floors, bottom up (a unit may import the units below it, never a sibling on its own floor or a floor above):

    ground     rexbert_core.typed_config, .sample_corpus, .tables  import no project package
               rexbert_core.safe_outputs, .token_shards   import typed_config (its error types)
    model      modeling_rexbert                           imports no project package (it ships as Hub remote code)
    libraries  trainers, curation, eval_suites, hub_cards
    top        rexbert                                    the CLI and the end-to-end pipeline
    bench      bench                                      may import anything; nothing imports it

Imports are read from the source with `ast`, lazy (function-level) imports included: a lazy cycle is still
a cycle for a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = "rexbert_core"
GROUND = {
    f"{CORE}.typed_config",
    f"{CORE}.sample_corpus",
    f"{CORE}.tables",
    f"{CORE}.safe_outputs",
    f"{CORE}.token_shards",
}
LIBRARIES = {"trainers", "curation", "eval_suites", "hub_cards"}
MAY_IMPORT = {
    CORE: set(),  # the package's own __init__ (a docstring)
    f"{CORE}.typed_config": set(),
    f"{CORE}.sample_corpus": set(),
    f"{CORE}.tables": set(),
    f"{CORE}.safe_outputs": {f"{CORE}.typed_config"},
    f"{CORE}.token_shards": {f"{CORE}.typed_config"},
    "modeling_rexbert": set(),
    **{library: GROUND | {"modeling_rexbert"} for library in LIBRARIES},
    "rexbert": GROUND | {"modeling_rexbert"} | LIBRARIES,
    "bench": GROUND | {"modeling_rexbert"} | LIBRARIES | {"rexbert"},
}
PACKAGES = ("rexbert_core", "modeling_rexbert", *sorted(LIBRARIES), "rexbert", "bench")
MAX_LINES = 600
GENERATED = {"rexbert_core/sample_corpus/vocabulary.py"}  # word lists


def unit_of(module: str) -> str:
    """The floor unit a dotted module belongs to (the longest `MAY_IMPORT` key it starts with)."""
    matches = [unit for unit in MAY_IMPORT if module == unit or module.startswith(unit + ".")]
    return max(matches, key=len)


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports (resolving relative imports and `from package import module`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while (
                target and target not in modules
            ):  # `import a.b.c` depends on the deepest module that exists
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_every_project_package_is_known(graph):
    top_level = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} - {"tests"}
    assert top_level == set(PACKAGES), "a new package needs a floor in this test"
    core = {f"{CORE}.{p.name}" for p in (ROOT / CORE).iterdir() if (p / "__init__.py").is_file()}
    core |= {f"{CORE}.{p.stem}" for p in (ROOT / CORE).glob("*.py") if p.name != "__init__.py"}
    assert core == GROUND, "a new ground-floor module needs a line in MAY_IMPORT"


def test_imports_only_go_down(graph):
    wrong = []
    for module, targets in graph.items():
        unit = unit_of(module)
        for target in targets:
            other = unit_of(target)
            if other != unit and other not in MAY_IMPORT[unit]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "upward or sideways imports:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles(graph):
    cycles, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_modules_stay_small():
    long = []
    for path in project_modules().values():
        relative = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if relative not in GENERATED and lines > MAX_LINES:
            long.append(f"{relative}: {lines} lines")
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(long)


def test_every_module_declares_its_public_names():
    missing = [
        path.relative_to(ROOT).as_posix()
        for path in project_modules().values()
        if path.stat().st_size
        and "__all__" not in path.read_text(encoding="utf-8")
        and path.name not in ("__main__.py",)
        and path.parts[-2] != "bench"  # scripts, run with python -m
    ]
    assert not missing, "modules without __all__:\n" + "\n".join(missing)


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The graph reader sees relative, lazy and `from package import module` imports."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from . import b\n")
    (package / "b.py").write_text("from pkg.a import f\nimport curation.report\n")
    modules = {
        "pkg": package / "__init__.py",
        "pkg.a": package / "a.py",
        "pkg.b": package / "b.py",
        "curation": ROOT / "curation" / "__init__.py",
        "curation.report": ROOT / "curation" / "report.py",
    }
    assert imports_of("pkg.a", package / "a.py", modules) == {"pkg", "pkg.b"}
    assert imports_of("pkg.b", package / "b.py", modules) == {"pkg.a", "curation.report"}
