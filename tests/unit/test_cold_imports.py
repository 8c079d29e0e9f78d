"""Cold start: a function's import, and its first invocation, load only what it uses.

Each check runs in a fresh interpreter, as a Lambda container starts, and lists the modules
that were loaded. httpx (with its TLS and HTTP/2 machinery, ~30 ms) belongs to the research
function and to models behind an HTTP API; the AWS SDK (~300 ms) is built on first use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

# Import the handler module by path, under the name Lambda gives it, and list what is loaded.
_IMPORT_APP = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""

_BUILD_DEFAULT_SUMMARIZER = """
import asyncio, json, sys
from brief.llm.config import ModelConfig
from brief.llm.factory import build_summarizer
summarizer = asyncio.run(build_summarizer(ModelConfig()))
print(json.dumps(sorted(sys.modules)))
"""

_NEVER_AT_IMPORT = {"httpx", "aioboto3", "aiobotocore", "botocore", "pypdfium2", "selectolax"}


def _loaded(code: str, *args: str) -> set[str]:
    done = subprocess.run(  # noqa: S603 - this interpreter on a fixed script
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("function", ["api", "research", "summarize", "combine", "deadletter"])
def test_a_function_imports_no_client_library(function: str) -> None:
    loaded = _loaded(_IMPORT_APP, str(ROOT / "functions" / function / "app.py"))

    assert not loaded & _NEVER_AT_IMPORT


def test_the_default_summarizer_is_built_without_an_http_client() -> None:
    """summarize and combine, with the offline summarizer, never load httpx or a provider."""
    loaded = _loaded(_BUILD_DEFAULT_SUMMARIZER)

    assert "httpx" not in loaded
    assert not {m for m in loaded if m.startswith(("brief.llm.openai", "brief.llm.summarizer"))}
