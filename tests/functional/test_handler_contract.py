"""A handler module's contract with whatever hosts it: its `Container` is the global
`container`, and the host gives that container the function's variables and a hook for each
AWS client its wiring builds (the local stack's faults, the benchmark's trace)."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest

from brief.runtime import HANDLER_CONTAINER, Container, container_of
from brief_local.functions import load_handler_module

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
ENVIRONMENT = {"BRIEF_BUCKET": "brief-data", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    "code_uri", sorted(p.parent for p in FUNCTIONS.glob("*/app.py")), ids=lambda p: p.name
)
def test_every_handler_module_keeps_its_container_where_a_host_finds_it(code_uri: Path) -> None:
    module = load_handler_module(code_uri, "app", f"Contract{code_uri.name}")
    container = container_of(module)
    try:
        assert isinstance(getattr(module, HANDLER_CONTAINER), Container)
    finally:
        container.close()


def test_a_module_without_a_container_is_refused_with_the_rule_it_breaks() -> None:
    module = types.ModuleType("brief_fn_bare")
    module.container = object()  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match=r"no brief.runtime.Container named 'container'"):
        container_of(module)


def test_the_hook_a_container_is_given_sees_each_aws_client_its_wiring_builds() -> None:
    seen: list[str] = []
    hooked = Container(environment=ENVIRONMENT, client_hook=lambda service, _: seen.append(service))
    plain = Container(environment=ENVIRONMENT)

    async def build(wiring: Any) -> None:
        await wiring.store()  # S3
        await wiring.queue()  # SQS
        await wiring.store()  # S3 again: the client is built once

    try:
        hooked.run(build)
        plain.run(build)  # another container's clients: not this hook's
    finally:
        hooked.close()
        plain.close()

    assert seen == ["s3", "sqs"]


def test_a_host_configures_a_container_before_its_first_invocation_not_after() -> None:
    container = Container(environment=ENVIRONMENT)
    try:
        assert container.wiring.settings.bucket == "brief-data"
        with pytest.raises(RuntimeError, match="before its first invocation"):
            container.configure_host(environment={"BRIEF_BUCKET": "other"})
    finally:
        container.close()
