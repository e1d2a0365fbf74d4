"""No module reaches into another package's private modules.

A private module (``_x.py``) belongs to its package; code elsewhere goes through the package's
``__all__``. A package's own subpackages may use its private modules (``pushprov._policy`` is
shared by all of pushprov), but siblings may not reach into each other's, nor a parent into a
child's. The few exceptions that remain are listed below, each with the reason it still stands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pushprov

SRC = Path(pushprov.__file__).parent

# (importing module, private module it imports): why it is still allowed. An entry that no
# longer occurs fails the test too, so the list only shrinks as these are given a public home.
ALLOWED: dict[tuple[str, str], str] = {}


def _is_private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def _module_and_package(root: Path, path: Path) -> tuple[str, str]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _imported_names(node: ast.AST, package: str) -> list[str]:
    """Absolute dotted names an import statement brings in (``from m import n`` gives ``m.n``,
    which may be a module or a name in one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            module = ".".join([*base, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        return [f"{module}.{alias.name}" for alias in node.names]
    return []


def cross_package_private_imports(root: Path = SRC) -> set[tuple[str, str]]:
    """(importing module, private module) for every import of a private module owned by a
    package that is neither the importer's package nor one of its ancestors."""
    found: set[tuple[str, str]] = set()
    for path in sorted(root.rglob("*.py")):
        module, package = _module_and_package(root, path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for name in _imported_names(node, package):
                parts = name.split(".")
                if parts[0] != "pushprov":
                    continue
                first = next((i for i, part in enumerate(parts) if _is_private(part)), None)
                if first is None:
                    continue
                owner = ".".join(parts[:first])
                if package == owner or package.startswith(owner + "."):
                    continue
                found.add((module, ".".join(parts[: first + 1])))
    return found


def test_no_new_cross_package_private_imports() -> None:
    found = cross_package_private_imports()
    assert found - ALLOWED.keys() == set(), "import these through the package's __all__"
    assert ALLOWED.keys() - found == set(), "gone: delete these from ALLOWED"


def test_the_rule_sees_relative_absolute_and_module_imports(tmp_path: Path) -> None:
    root = tmp_path / "pushprov"
    for package in ("keys", "openpgp"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "_policy.py").write_text("")
    (root / "openpgp" / "_packets.py").write_text("")
    (root / "openpgp" / "_message.py").write_text("from ._packets import Tag\n")
    (root / "keys" / "_a.py").write_text("from ..openpgp._packets import Tag\n")
    (root / "keys" / "_b.py").write_text("import pushprov.openpgp._packets\n")
    (root / "keys" / "_c.py").write_text("from ..openpgp import _packets\n")
    (root / "keys" / "_d.py").write_text("from .._policy import Policy\nfrom . import _a\n")
    (root / "_api.py").write_text("from .openpgp._message import seal\n")
    assert cross_package_private_imports(root) == {
        ("pushprov.keys._a", "pushprov.openpgp._packets"),
        ("pushprov.keys._b", "pushprov.openpgp._packets"),
        ("pushprov.keys._c", "pushprov.openpgp._packets"),
        ("pushprov._api", "pushprov.openpgp._message"),
    }
