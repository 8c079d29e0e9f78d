"""Names say what things are: no two public classes of Brief's packages share a name, so a
reader (or an import) never mistakes the emulator's container or the dlq tool's entry for
the runtime's or the pipeline's."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("layers/core/brief", "infra/brief_local", "infra/brief_testing", "clients/brief_cli")


def test_no_two_public_classes_share_a_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    where[node.name].append(str(path.relative_to(ROOT)))

    assert {name: files for name, files in where.items() if len(files) > 1} == {}
