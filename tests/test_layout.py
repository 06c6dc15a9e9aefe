"""The layout is the architecture: one domain core, facades side by side over it.

The core (`relays/*.py`, its migrations) imports no facade; a facade imports the core and never
another facade. The management commands and the project package (`relayapi/`) sit outside both
and may use any of them.
"""

import ast
from pathlib import Path

import pytest

RELAYS = Path(__file__).resolve().parent.parent / "relays"
FACADES = ("relays.greenarrow", "relays.mailmanager", "relays.admin", "relays.postfix")


def module_name(path):
    parts = path.relative_to(RELAYS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """Every module `path` imports, absolute, with `from X import y` also counted as X.y (y may
    be a submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def facade_of(name):
    return next((f for f in FACADES if name == f or name.startswith(f + ".")), None)


def layer_of(name):
    if name.startswith("relays.management"):
        return "front end"
    return facade_of(name) or "core"


def violations(modules):
    """(importer, imported) pairs that break the rule, for {module name: imported names}."""
    found = []
    for importer, imported in modules.items():
        layer = layer_of(importer)
        if layer == "front end":
            continue
        for name in sorted(imported):
            target = facade_of(name)
            if target is not None and target != layer:
                found.append((importer, name))
    return found


def test_the_core_imports_no_facade_and_no_facade_imports_another():
    modules = {module_name(p): imports_of(p) for p in RELAYS.rglob("*.py")}

    assert violations(modules) == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("relays.services", "relays.greenarrow.envelope"),
        ("relays.models", "relays.admin"),
        ("relays.greenarrow.views", "relays.mailmanager.shapes"),
        ("relays.mailmanager.relays", "relays.greenarrow.pagination"),
        ("relays.admin", "relays.greenarrow.serializers"),
    ],
)
def test_the_rule_catches_a_forbidden_import(importer, imported):
    assert violations({importer: {imported}}) == [(importer, imported)]


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("relays.greenarrow.views", "relays.services"),
        ("relays.mailmanager.views", "relays.mailmanager.sigv4"),
        ("relays.management.commands.create_access_key", "relays.mailmanager.keys"),
    ],
)
def test_the_rule_allows_the_core_and_a_facade_of_its_own(importer, imported):
    assert violations({importer: {imported}}) == []
