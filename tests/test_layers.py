"""The package's layer order, enforced: a module may import from its own layer or a lower one, never a higher one.

    base (errors, io, config, text, ...) -> data -> synth -> encoders, captioners -> prefs -> reward -> rl -> eval
    -> demo -> cli

`synth` is the simulated world and the simulated listeners: it stands in for recordings and people, so it sits on
the data (records, audio) and below everything that learns from it.

Imports inside functions count too: a lazy import is still a dependency.
"""

import ast
from pathlib import Path

import prefcap

PACKAGE = Path(prefcap.__file__).parent
LAYERS = [
    {"base"},
    {"data"},
    {"synth"},
    {"encoders", "captioners"},
    {"prefs"},
    {"reward"},
    {"rl"},
    {"eval"},
    {"demo"},
    {"cli"},
]
SUBPACKAGES = {name for layer in LAYERS for name in layer} - {"base"}  # demo and cli are packages too


def layer_of(module: str) -> int:
    """prefcap.rl.trainer -> the rl layer; a top-level module that is not a stage (prefcap.io) is base."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "base"
    if name not in SUBPACKAGES:
        name = "base"
    return next(k for k, layer in enumerate(LAYERS) if name in layer)


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name == "prefcap" or name.startswith("prefcap.")]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_stage_package_and_top_level_module_has_a_layer():
    stages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert stages == SUBPACKAGES, "a new subpackage needs a place in LAYERS"


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        for line, imported in imports(path):
            if imported != "prefcap" and layer_of(imported) > layer_of(module):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} {module} imports {imported}")
    assert upward == []


def test_the_layer_check_sees_an_upward_import():
    assert layer_of("prefcap.reward.features") > layer_of("prefcap.text")
    assert layer_of("prefcap.eval.metrics") > layer_of("prefcap.rl.trainer")  # what rl -> eval.metrics would break
    assert layer_of("prefcap.cli") == len(LAYERS) - 1 and layer_of("prefcap.io") == 0
