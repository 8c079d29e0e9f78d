"""The layer that deploys carries the same dependencies the project is tested with."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _names(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower()
            found[name] = line
    return found


def test_layer_requirements_match_the_project_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    layer = (ROOT / "layers/core/requirements.txt").read_text().splitlines()
    assert _names(layer) == _names(project)


def test_functions_import_only_the_layer_and_the_standard_library() -> None:
    allowed = {"__future__", "asyncio", "typing", "brief", "mangum"}
    for app in (ROOT / "functions").glob("*/app.py"):
        imports = re.findall(r"^(?:from|import) ([\w]+)", app.read_text(), flags=re.M)
        assert set(imports) <= allowed, f"{app} imports {set(imports) - allowed}"
