"""Lambda containers on this machine: a function's module, loaded fresh per container.

Each container is a separate load of the handler module (its own globals, its own event
loop) running on its own thread, as a Lambda execution environment would; a pool keeps
warm containers and starts new ones up to the function's concurrency.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from brief_local.template import FunctionSpec

_serial = itertools.count(1)


@dataclass
class LambdaContext:
    """The subset of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_module(spec: FunctionSpec) -> ModuleType:
    """Load the function's handler module afresh, under a name of its own (no sys.path edit)."""
    path = spec.code_uri / (spec.module.replace(".", "/") + ".py")
    name = f"brief_fn_{spec.logical_id}_{next(_serial)}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {spec.handler} from {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


class Container:
    """One execution environment: a module instance and the one thread that runs it."""

    def __init__(self, spec: FunctionSpec, environment: Mapping[str, str] | None = None) -> None:
        self.spec = spec
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=spec.logical_id)
        started = time.perf_counter()
        self.module = load_module(spec)
        container = getattr(self.module, "container", None)
        if environment is not None and container is not None:
            container.environment = environment  # this function's variables, not the process's
        self.init_ms = (time.perf_counter() - started) * 1000
        self.handler: Callable[[dict[str, Any], Any], Any] = getattr(self.module, spec.attribute)
        self.broken = False

    async def invoke(self, event: dict[str, Any]) -> Any:
        """Run the handler on this container's thread; TimeoutError past the function's timeout."""
        context = LambdaContext(self.spec.logical_id, self.spec.memory, self.spec.timeout)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._thread, self.handler, event, context)
        try:
            return await asyncio.wait_for(future, timeout=self.spec.timeout)
        except TimeoutError:
            self.broken = True  # Lambda would kill this environment; never reuse it
            raise

    def close(self) -> None:
        """Close the handler's loop and clients on its own thread, then stop the thread."""
        if not self.broken:
            self._thread.submit(_close_module, self.module).result(timeout=10)
        self._thread.shutdown(wait=not self.broken, cancel_futures=True)


def _close_module(module: ModuleType) -> None:
    container = getattr(module, "container", None)
    if container is not None:
        container.close()


class FunctionPool:
    """Warm containers of one function, at most `concurrency` at once."""

    def __init__(
        self,
        spec: FunctionSpec,
        concurrency: int,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self._environment = environment
        self._slots = asyncio.Semaphore(concurrency)
        self._idle: list[Container] = []
        self._all: list[Container] = []

    async def invoke(self, event: dict[str, Any]) -> Any:
        """Invoke on a warm container if one is idle, else on a new one."""
        async with self._slots:
            container = self._idle.pop() if self._idle else await self._start()
            try:
                return await container.invoke(event)
            finally:
                if not container.broken:
                    self._idle.append(container)

    async def _start(self) -> Container:
        container = await asyncio.to_thread(Container, self.spec, self._environment)
        self._all.append(container)
        return container

    async def close(self) -> None:
        """Close every container."""
        for container in self._all:
            await asyncio.to_thread(container.close)
        self._all.clear()
        self._idle.clear()
