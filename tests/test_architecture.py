"""The layout holds: data flows one way, no import cycles, modules a reader can hold.

Floors, bottom up (a unit may import the units below it, never a sibling on its own floor or a floor above):

    ground     rexbert_core.typed_config, .sample_corpus, .tables   import no project package
               rexbert_core.safe_outputs, .token_shards            import typed_config (token_shards also
                                                                   safe_outputs: block checksums)
    model      modeling_rexbert      imports no project package (it ships as Hub remote code)
    libraries  trainers, curation, eval_suites, hub_cards
    top        rexbert               the CLI and the end-to-end pipeline
    bench      bench                 may import anything; nothing imports it

The registries agree with what they describe (stages with the layout and the run config, suites with their
protocol, curation stages with `StagesConfig`, model classes with their Auto classes), and the top floor
hands typed configs down instead of writing into mappings by path.

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
    f"{CORE}.token_shards": {f"{CORE}.typed_config", f"{CORE}.safe_outputs"},  # block checksums
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


# ---- registries: declared once, agreeing with what they describe ------------------------------------------


def test_stage_declarations_agree_with_the_layout_and_the_run_config(tmp_path):
    """Every stage names `Layout` entries it alone creates, a real run-config section, and a configure that
    runs; every entry of the layout is created by one stage or by the runner itself."""
    import dataclasses

    from rexbert.pipeline import STAGES, Layout, RunConfig

    layout = Layout(tmp_path)
    names = [stage.name for stage in STAGES]
    assert len(set(names)) == len(names)
    owners: dict[str, str] = {}
    for stage in STAGES:
        for output in stage.outputs:
            assert isinstance(getattr(layout, output), Path), f"{stage.name}: {output} is not a Layout path"
        for entry in stage.entries(layout):
            assert entry not in owners, f"{entry} is created by both {owners[entry]} and {stage.name}"
            owners[entry] = stage.name
        sections = {f.name for f in dataclasses.fields(RunConfig)}
        assert stage.section is None or stage.section in sections, f"{stage.name}: no section {stage.section}"
    paths = [name for name, value in vars(Layout).items() if isinstance(value, property)]
    entries = {layout.entry(getattr(layout, name)) for name in paths} - {
        layout.config.name,
        layout.stages.name,
    }
    assert entries == set(owners), f"layout entries no stage creates: {sorted(entries - set(owners))}"


def test_every_stage_hands_its_library_a_typed_config(tmp_path):
    """The plan of the default run: each stage gets the library's own config classes, never a mapping."""
    from curation.config import CurationConfig
    from curation.tokenize import TokenizeConfig
    from eval_suites.common import Budget
    from eval_suites.glue import GlueOptions
    from hub_cards import CardOptions, DatasetCardOptions
    from rexbert.pipeline import load_run
    from trainers.recipes import Recipe

    jobs = load_run(None, None, tmp_path).jobs
    assert all(isinstance(c, CurationConfig) for c in jobs["curate"].values())
    assert isinstance(jobs["tokenize"].shards, TokenizeConfig) and isinstance(
        jobs["tokenize"].text_recipe, Recipe
    )
    assert isinstance(jobs["pretrain"], Recipe)
    assert all(isinstance(b, Budget) for b in jobs["eval"].budgets.values())
    assert isinstance(jobs["eval"].options["glue"], GlueOptions)
    assert isinstance(jobs["cards"].model, CardOptions)
    from eval_suites.tasks.config import RerankConfig, RetrievalConfig

    assert [type(t.config) for t in jobs["finetune"].tasks] == [RetrievalConfig, RerankConfig]
    assert all(isinstance(o, DatasetCardOptions) for o in jobs["cards"].datasets.values())


DICT_PATH_WRITES = (
    "a nested subscript store (a[x][y] = ...), a store into an object's mapping (a.b[x] = ...) or setdefault"
)


def dict_path_writes(path: Path) -> list[str]:
    """Places in a module that write into a mapping by path: how one floor used to edit another's config."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets if isinstance(node, (ast.Assign, ast.AugAssign)) else []:
            if isinstance(target, ast.Subscript) and isinstance(target.value, (ast.Subscript, ast.Attribute)):
                if ast.unparse(target.value) != "os.environ":  # the environment is no config
                    found.append(f"{path.name}:{node.lineno}")
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "setdefault":
            if ast.unparse(node.func.value) != "os.environ":
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_the_top_floor_writes_no_dict_paths_into_other_configs():
    """`rexbert` builds typed configs and hands them down (typed changes go through `with_changes`)."""
    found = [place for path in sorted((ROOT / "rexbert").rglob("*.py")) for place in dict_path_writes(path)]
    assert not found, f"{DICT_PATH_WRITES}:\n" + "\n".join(found)


def test_the_dict_path_check_sees_what_it_looks_for(tmp_path):
    code = tmp_path / "m.py"
    code.write_text(
        'a["x"]["y"] = 1\nconfig.settings["k"] = 2\nd.setdefault("k", {})\nok = {}\nok["k"] = 1\n'
    )
    assert dict_path_writes(code) == ["m.py:1", "m.py:2", "m.py:3"]


def test_eval_suites_implement_the_protocol():
    import dataclasses

    from eval_suites.common import Budget
    from eval_suites.runner import SUITES
    from eval_suites.suite import Suite

    for name, suite in SUITES.items():
        assert isinstance(suite, Suite) and suite.name == name, name
        assert isinstance(suite.default_budget, Budget) and dataclasses.is_dataclass(suite.options), name
        assert suite.data_keys and all(isinstance(key, str) for key in suite.data_keys), name


def test_curation_filter_stages_are_listed_once():
    """Every stage settings class of `curation/steps/` is one field of `StagesConfig`, in pipeline order."""
    import dataclasses

    import curation.steps as steps
    from curation.config import StagesConfig
    from curation.steps import FilterStage

    settings = {c for c in vars(steps).values() if isinstance(c, type) and issubclass(c, FilterStage)} - {
        FilterStage
    }
    listed = [f.type for f in dataclasses.fields(StagesConfig)]
    field_types = {getattr(steps, t) if isinstance(t, str) else t for t in listed}
    assert settings <= field_types, f"stage settings not in StagesConfig: {settings - field_types}"
    order = [stage.__class__.__name__ for stage in StagesConfig().filters()]
    assert order.index("ClassifierConfig") < order.index("LanguageConfig")  # the cheap model drops most first


def test_every_model_class_is_registered_for_its_auto_class():
    import modeling_rexbert
    from modeling_rexbert.modeling_rexbert import auto_classes

    public = {getattr(modeling_rexbert, n) for n in modeling_rexbert.__all__ if n.startswith("RexBertFor")}
    registered = auto_classes()
    assert public | {modeling_rexbert.RexBertModel} == set(registered.values())
    assert all(cls._auto_class == auto for auto, cls in registered.items())
