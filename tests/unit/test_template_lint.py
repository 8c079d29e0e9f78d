"""The template linter CI runs (`make validate`) catches the mistakes that break a deploy.

cfn-lint checks SAM resources only through the SAM translator, and newer releases stopped
reporting errors inside `AWS::Serverless::Function`: 1.58 passes all three mutations below.
The Makefile pins a release that catches them; these tests prove the pin still does, on
mutated copies of the real template.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "template.yaml"
CFN_LINT = ROOT / ".venv/tools/bin/cfn-lint"  # `make tools` installs the pinned release

pytestmark = pytest.mark.skipif(
    not CFN_LINT.exists(), reason=f"{CFN_LINT} is missing: `make tools` (run by `make test`)"
)

# name -> (text in template.yaml, its broken replacement, rule expected, text in its message)
MUTATIONS = {
    "runtime": ("Runtime: python3.12", "Runtime: python3.99", "E3030", "'python3.99'"),
    "response-types": (
        "FunctionResponseTypes: [ReportBatchItemFailures]",
        "FunctionResponseTypes: [ReportBatchItemFailure]",
        "E3030",
        "'ReportBatchItemFailure'",
    ),
    "get-att": (
        "EventSourceArn: !GetAtt IntakeQueue.Arn",
        "EventSourceArn: !GetAtt IntakeQueue.Url",
        "E1010",
        "'Url'",
    ),
}


def lint(*paths: Path) -> list[dict[str, Any]]:
    """cfn-lint's findings (errors and warnings) for each template, as JSON records."""
    done = subprocess.run(  # noqa: S603 - a fixed executable on files this test wrote
        [str(CFN_LINT), "--format", "json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode in (0, 2, 4, 6), done.stderr  # 2 errors, 4 warnings, 6 both
    findings: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    return findings


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """cfn-lint's findings for the real template ("template") and each mutation, in one run."""
    source = TEMPLATE.read_text()
    directory = tmp_path_factory.mktemp("lint")
    paths = {"template": TEMPLATE}
    for name, (good, bad, _, _) in MUTATIONS.items():
        assert good in source, f"template.yaml no longer has {good!r}; update this test"
        paths[name] = directory / f"{name}.yaml"
        paths[name].write_text(source.replace(good, bad, 1))
    found = lint(*paths.values())
    return {
        name: [f for f in found if Path(f["Filename"]).resolve() == path.resolve()]
        for name, path in paths.items()
    }


def test_the_template_lints_clean(findings: dict[str, list[dict[str, Any]]]) -> None:
    assert findings["template"] == [], json.dumps(findings["template"], indent=2)


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_the_pinned_linter_catches_a_broken_sam_function(
    name: str, findings: dict[str, list[dict[str, Any]]]
) -> None:
    _, bad, rule, detail = MUTATIONS[name]
    assert any(f["Rule"]["Id"] == rule and detail in f["Message"] for f in findings[name]), (
        f"cfn-lint let `{bad}` through: {findings[name]}"
    )
