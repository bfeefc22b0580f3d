"""streamagg's layers (docs/architecture.md): a module imports only from its own layer or the
layers below it. Imports inside `if TYPE_CHECKING:` are type hints, not dependencies."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "streamagg"

# Bottom to top; the names are top-level modules or packages of streamagg.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "foundation",
        {
            "errors",
            "settings",
            "settings_doc",
            "failpoints",
            "numbers",
            "kafka_clients",
            "gc_tuning",
            "csv_lines",
            "log_limits",
        },
    ),
    ("input", {"cdr"}),
    ("messages", {"batches", "metrics", "reference", "topics"}),
    ("state", {"tables"}),
    ("reports", {"reports"}),
    ("stages", {"agents"}),
    ("web", {"web"}),
    ("process", {"app", "cli"}),
]
LEVEL = {name: level for level, (_, names) in enumerate(LAYERS) for name in names}


def top_name(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def runtime_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of every streamagg import outside `if TYPE_CHECKING:` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for child in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("streamagg"):
            found.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("streamagg")]
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    own = relative.parts[0].removesuffix(".py")
    if own == "__init__":
        return
    assert own in LEVEL, f"{relative}: add {own!r} to a layer in LAYERS and docs/architecture.md"
    upward = [
        f"{relative}:{line} imports {module} ({LAYERS[LEVEL[top_name(module)]][0]})"
        for line, module in runtime_imports(ast.parse(path.read_text()))
        if top_name(module) in LEVEL and LEVEL[top_name(module)] > LEVEL[own]
    ]
    assert not upward, f"{own} is in layer {LAYERS[LEVEL[own]][0]!r}: " + "; ".join(upward)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from streamagg.web import routes\n"
        "if TYPE_CHECKING:\n"
        "    from streamagg.app import StreamaggApp\n"
    )
    assert runtime_imports(tree) == [(2, "streamagg.web")]
