"""What deploys is what was tested: the locks agree with pyproject.toml and with each other.

pyproject.toml holds ranges; `make lock` writes the locks that are installed (the dev venv,
and the Lambda layer and StreamFunction that `sam build` packages). A dependency added to
pyproject without a new lock, a pin outside its range, or a layer at other versions than the
tests ran with fails here, not in Lambda.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DEV_LOCK = ROOT / "requirements/dev.txt"
LAYER_LOCK = ROOT / "layers/core/requirements.txt"
DEMO_LOCK = ROOT / "requirements/demo.txt"
STREAM_LOCK = ROOT / "functions/stream/requirements.txt"
# The functions' runtime (template.yaml: python3.12 on x86_64), for the dev lock's markers.
LAMBDA = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def locked(path: Path, environment: dict[str, str] | None = None) -> dict[str, Version]:
    """Each package of a lock that applies in `environment` (this interpreter's by default)
    -> its pinned version; every entry must be an exact pin with at least one hash."""
    pins: dict[str, Version] = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = re.split(r"\s+(?=--)", line)
        assert any(o.startswith("--hash=sha256:") for o in options), (
            f"{path.name}: {requirement} has no hash"
        )
        parsed = Requirement(requirement)
        if parsed.marker is not None and not parsed.marker.evaluate(environment):
            continue
        (spec,) = parsed.specifier
        assert spec.operator == "==", f"{path}: {requirement} is not an exact pin"
        pins[canonicalize_name(parsed.name)] = Version(spec.version)
    return pins


def outside(requirements: list[str], pins: dict[str, Version]) -> list[str]:
    """The requirements that `pins` leaves out or pins outside their range."""
    wrong = []
    for line in requirements:
        requirement = Requirement(line)
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            wrong.append(f"{line}: locked {version}")
    return wrong


def test_the_layer_lock_pins_every_project_dependency_inside_its_range() -> None:
    assert outside(PROJECT["dependencies"], locked(LAYER_LOCK)) == []


def test_the_dev_lock_pins_every_requirement_of_the_dev_venv_inside_its_range() -> None:
    extras = PROJECT["optional-dependencies"]
    wanted = PROJECT["dependencies"] + extras["local"] + extras["dev"]
    own = [r for r in wanted if canonicalize_name(Requirement(r).name) != "brief"]
    assert outside(own, locked(DEV_LOCK)) == []


def test_the_demo_installs_the_runtime_and_local_stack_at_the_tested_versions_and_no_more() -> None:
    extras = PROJECT["optional-dependencies"]
    wanted = PROJECT["dependencies"] + extras["local"]
    demo, tested = locked(DEMO_LOCK), locked(DEV_LOCK)
    assert outside(wanted, demo) == []
    assert {n: v for n, v in demo.items() if tested.get(n) != v} == {}
    # What the dev extra adds for the tests alone (some of it, e.g. openapi-spec-validator,
    # moto's server needs too).
    tools = {"pytest", "mypy", "ruff", "playwright", "matplotlib", "schemathesis", "hypothesis"}
    assert tools & set(demo) == set()


def test_lambda_runs_the_versions_the_tests_run() -> None:
    tested = locked(DEV_LOCK, LAMBDA)
    for lock in (LAYER_LOCK, STREAM_LOCK):
        deployed = locked(lock)
        differ = {n: (v, tested.get(n)) for n, v in deployed.items() if tested.get(n) != v}
        assert differ == {}, f"{lock.name}: deployed vs tested"


def test_the_stream_function_brings_the_server_it_runs() -> None:
    uvicorn = next(r for r in PROJECT["optional-dependencies"]["local"] if "uvicorn" in r)
    assert outside([uvicorn], locked(STREAM_LOCK)) == []
    assert "uvicorn" in (ROOT / "functions/stream/run.sh").read_text()


def test_functions_import_only_the_layer_and_the_standard_library() -> None:
    allowed = {"__future__", "asyncio", "collections", "typing", "brief", "mangum"}
    for app in (ROOT / "functions").glob("*/app.py"):
        imports = re.findall(r"^(?:from|import) ([\w]+)", app.read_text(), flags=re.M)
        assert set(imports) <= allowed, f"{app} imports {set(imports) - allowed}"
