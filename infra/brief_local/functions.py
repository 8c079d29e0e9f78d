"""Lambda containers on this machine: a function's module, loaded fresh per container.

Each container is a separate load of the handler module (its own globals, its own event
loop) running on its own thread, or in a process of its own, as a Lambda execution
environment would; a pool keeps warm containers and starts new ones up to the function's
concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import json
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from brief.runtime import container_of
from brief.wiring import ClientHook
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
    return load_handler_module(spec.code_uri, spec.module, spec.logical_id)


def load_handler_module(code_uri: Path, module: str, logical_id: str) -> ModuleType:
    """`load_module` from the parts of a spec (a function's process gets only those)."""
    path = code_uri / (module.replace(".", "/") + ".py")
    name = f"brief_fn_{logical_id}_{next(_serial)}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {module} from {path}")
    loaded = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = loaded
    module_spec.loader.exec_module(loaded)
    return loaded


def prepare(
    module: ModuleType,
    environment: Mapping[str, str] | None,
    client_hook: ClientHook | None = None,
) -> None:
    """Give a loaded handler module's runtime container its function's variables (not the
    process's) and the stack's hook for its AWS clients, and have its cold invocation
    freeze what it built, as in Lambda."""
    container_of(module).configure_host(
        environment=environment, client_hook=client_hook, freeze_after_cold_start=True
    )


class FunctionError(Exception):
    """The handler raised, or its process died, in a function's process of its own."""


class ThreadContainer:
    """One execution environment: a module instance and the one thread that runs it."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str] | None = None,
        client_hook: ClientHook | None = None,
    ) -> None:
        self.spec = spec
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=spec.logical_id)
        started = time.perf_counter()
        self.module = load_module(spec)
        prepare(self.module, environment, client_hook)
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

    async def aclose(self) -> None:
        """`close`, off the caller's loop."""
        await asyncio.to_thread(self.close)


def _close_module(module: ModuleType) -> None:
    container_of(module).close()


# Lambda's init phase gets 10 s; a cold interpreter on a busy machine may need more.
INIT_TIMEOUT_S = 60.0
# The functions yield the CPU to this process, whose loop stands in for AWS's own services
# (API Gateway, the event source mappings): those never wait for a function's CPU in AWS.
# At the default priority, 12 containers on 2 cores kept the loop waiting for a core for
# 60-80% of its gaps over 50 ms (50 jobs: 1.5-3.8 s of gaps); at 10, ~10% of ~0.4 s.
NICENESS = 10
_LINE_LIMIT = 64 * 1024 * 1024  # an event or a response is one JSON line (Lambda's are <= 6 MB)


class ProcessContainer:
    """One execution environment in a process of its own (`brief_local.function_process`).

    A thread shares this process's GIL with the API's loop, the pollers and every other
    container: at 50 jobs the loop's gaps over 50 ms added up to ~9 s, in which it ran for
    1.4 s and waited for the GIL for most of the rest. A process shares nothing, as Lambda's
    environments do: events and responses cross as JSON, the module loads at start (its
    init), and a timeout kills the process. The functions' AWS clients are then out of reach
    of this process's client hook (`StackOptions.client_hook`, the faults).
    """

    def __init__(self, spec: FunctionSpec, environment: Mapping[str, str] | None = None) -> None:
        self.spec = spec
        self._environment = dict(environment) if environment is not None else None
        self._process: asyncio.subprocess.Process | None = None
        self.init_ms = 0.0
        self.broken = False

    async def start(self) -> ProcessContainer:
        """Start the process and load the module; FunctionError or TimeoutError if it cannot."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "brief_local.function_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        setup = {
            "code_uri": str(self.spec.code_uri),
            "module": self.spec.module,
            "attribute": self.spec.attribute,
            "logical_id": self.spec.logical_id,
            "memory": self.spec.memory,
            "timeout": self.spec.timeout,
            "environment": self._environment,
            "niceness": NICENESS,
        }
        try:
            ready = await self._exchange(setup, timeout_s=INIT_TIMEOUT_S)
        except BaseException:
            await self.aclose(kill=True)
            raise
        self.init_ms = float(ready["init_ms"])
        return self

    async def invoke(self, event: dict[str, Any]) -> Any:
        """Invoke the handler in the process; TimeoutError past the function's timeout."""
        try:
            answer = await self._exchange({"event": event}, timeout_s=self.spec.timeout)
        except FunctionError:
            raise
        except BaseException:
            # Timed out (Lambda kills the environment), or the caller gave up: its answer
            # would come out of turn. `aclose` reaps the process.
            self._kill()
            raise
        return answer["result"]

    async def _exchange(self, message: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        process = self._process
        if process is None or process.stdin is None or process.stdout is None or self.broken:
            raise FunctionError(f"{self.spec.logical_id}'s process is not running")
        try:
            process.stdin.write(json.dumps(message).encode() + b"\n")
            await process.stdin.drain()
            line = await asyncio.wait_for(process.stdout.readline(), timeout=timeout_s)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.broken = True
            raise FunctionError(f"{self.spec.logical_id}'s process died: {exc}") from exc
        if not line:
            self.broken = True
            raise FunctionError(f"{self.spec.logical_id}'s process exited")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise FunctionError(answer["error"])
        return answer

    async def aclose(self, *, kill: bool = False) -> None:
        """End the process: let it close its clients, unless it is broken or `kill` says not."""
        process, self._process = self._process, None
        if process is None:
            return
        if kill or self.broken:
            self._kill(process)
        elif process.stdin is not None:
            process.stdin.close()  # end of input: the process closes its container and exits
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            self._kill(process)
            await process.wait()

    def _kill(self, process: asyncio.subprocess.Process | None = None) -> None:
        self.broken = True
        process = process or self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()


AnyContainer = ThreadContainer | ProcessContainer


class FunctionPool:
    """Warm containers of one function, at most `concurrency` at once; each on a thread of
    this process, or in a process of its own when `processes` says so."""

    def __init__(
        self,
        spec: FunctionSpec,
        concurrency: int,
        environment: Mapping[str, str] | None = None,
        *,
        processes: bool = False,
        client_hook: ClientHook | None = None,
    ) -> None:
        if processes and client_hook is not None:
            raise ValueError("a client hook reaches the functions' clients only on threads")
        self.spec = spec
        self._environment = environment
        self._processes = processes
        self._client_hook = client_hook
        self._slots = asyncio.Semaphore(concurrency)
        self._idle: list[AnyContainer] = []
        self._all: list[AnyContainer] = []

    async def invoke(self, event: dict[str, Any]) -> Any:
        """Invoke on a warm container if one is idle, else on a new one."""
        async with self._slots:
            container = self._idle.pop() if self._idle else await self._start()
            try:
                return await container.invoke(event)
            finally:
                if not container.broken:
                    self._idle.append(container)

    async def _start(self) -> AnyContainer:
        container: AnyContainer
        if self._processes:
            container = await ProcessContainer(self.spec, self._environment).start()
        else:
            container = await asyncio.to_thread(
                ThreadContainer, self.spec, self._environment, self._client_hook
            )
        self._all.append(container)
        return container

    async def close(self) -> None:
        """Close every container."""
        for container in self._all:
            await container.aclose()
        self._all.clear()
        self._idle.clear()
