"""Function shape of Python files: length in lines and cyclomatic complexity, per function.

Usage: python scripts/shape.py [--over LINES:COMPLEXITY] FILE_OR_DIR...

Length is the lines a function spans with its decorators (nested functions included, as a
reader sees them).
Complexity is McCabe's, counted as radon does for its own body: 1 + each if/elif, loop,
except, conditional expression, comprehension clause, match case and extra boolean operand;
a nested function or class is counted on its own, not in its parent. Prints one line per
function (``--over`` keeps those over either bound), then a summary.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

_BRANCHES = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.IfExp, ast.ExceptHandler)
_Function = ast.FunctionDef | ast.AsyncFunctionDef


def complexity(function: _Function) -> int:
    count = 1
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue  # counted on its own
        if isinstance(node, _BRANCHES):
            count += 1
        elif isinstance(node, ast.BoolOp):
            count += len(node.values) - 1
        elif isinstance(node, ast.comprehension):
            count += 1 + len(node.ifs)
        elif isinstance(node, ast.match_case):
            count += 1
        stack.extend(ast.iter_child_nodes(node))
    return count


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, _Function]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def python_files(paths: list[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--over", default="0:0", metavar="LINES:COMPLEXITY")
    args = parser.parse_args(argv)
    max_lines, max_complexity = (int(part) for part in args.over.split(":"))
    rows = []
    for path in python_files(args.paths):
        for name, node in functions(ast.parse(path.read_text(), str(path))):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = (node.end_lineno or node.lineno) - first + 1
            rows.append((str(path), name, length, complexity(node)))
    shown = [row for row in rows if row[2] > max_lines or row[3] > max_complexity]
    for path, name, length, cc in sorted(shown, key=lambda row: (-row[2], row[0], row[1])):
        print(f"{length:5d} lines  cc {cc:3d}  {path}:{name}")
    if rows:
        longest = max(rows, key=lambda row: row[2])
        most = max(rows, key=lambda row: row[3])
        print(
            f"{len(rows)} functions; longest {longest[2]} lines ({longest[1]}); "
            f"highest complexity {most[3]} ({most[1]}); "
            f"{sum(1 for row in rows if row[2] > 50)} over 50 lines, "
            f"{sum(1 for row in rows if row[3] > 10)} over complexity 10"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
