"""The local stack: template.yaml's bucket, queues and functions, on loopback, offline.

Starts moto's server, creates exactly the bucket and queues the template declares (with
their visibility timeouts and redrive policies), resolves each function's environment from
the template, runs every SQS-triggered function through a local event source mapping, and
serves the API function's ASGI app with uvicorn. Nothing is declared twice: change the
template and the local stack follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brief.runtime import Container, container_of
from brief_local import service_models
from brief_local.esm import EventSourceMapping
from brief_local.functions import FunctionPool, load_module
from brief_local.persist import BucketMirror
from brief_local.schedule import Schedule
from brief_local.template import Template, find_template, rate_seconds, resolve

if TYPE_CHECKING:
    from brief.wiring import ClientHook
    from brief_testing.faults import FaultInjector

log = logging.getLogger(__name__)

REGION = "us-east-1"
ACCOUNT = "123456789012"
# How long the API keeps an idle connection open: longer than its clients pool one (httpx:
# 5 s), so that the client is always the one to close an idle connection. uvicorn's default is
# also 5 s: the server then sometimes closed a connection that a busy client was just reusing,
# and the request met a reset (httpx.ReadError) instead of an answer.
API_KEEP_ALIVE_S = 75
POLL_WAIT_S = 20


@dataclass
class StackOptions:
    """How the local stack runs; the defaults suit the demo."""

    template: Path | None = None
    host: str = "127.0.0.1"
    api_port: int = 0
    environment: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)  # like --parameter-overrides
    name: str | None = None  # prefixes the bucket's and queues' names; None: a random one
    # Each poller's long poll, as Lambda's mappings make them (20 s, SQS's longest). A message
    # still arrives at once: moto answers a waiting poll as soon as one is sent or becomes
    # visible. Shorter polls only cost CPU: 24 pollers polling every second kept an idle
    # stack at 13% of a core (`python -m bench.idle`).
    poll_wait_s: int = POLL_WAIT_S
    retry_after_s: int | None = 1
    max_pollers: int = 4
    # Chaos runs (brief_testing.chaos): every queue's VisibilityTimeout instead of the
    # template's (short, so a crashed worker's messages come back within the run), and the
    # faults to inject into the functions' AWS clients and the event source mappings.
    visibility_timeout_s: int | None = None
    faults: FaultInjector | None = None
    # Seconds between runs of every Schedule event (the sweeper); None: the template's own
    # rate(...). Tests set 1, or math.inf to run them only through `run_schedules()`.
    schedule_every_s: float | None = None
    # moto in a process of its own rather than a thread of this one: it then has a core to
    # itself instead of sharing this process's GIL with the API and every container (the
    # benchmark's scale runs); a thread starts faster (tests).
    moto_process: bool = False
    # Each function container in a process of its own rather than on a thread of this one, as
    # Lambda runs them: the API's loop and the pollers then share this process's GIL with no
    # container (the benchmark's scale runs). Threads start faster (tests), and only they let
    # `faults` and `client_hook` reach the functions' clients (chaos runs, bench.trace).
    function_processes: bool = False
    # Called with each AWS client a function builds (its service's name, the client), after
    # the faults' own: bench.trace times every call with it.
    client_hook: ClientHook | None = None
    # The bucket mirrored here and restored from here at the next start (`brief local
    # --data-dir`); None: everything lives in memory and ends with the stack.
    data_dir: Path | None = None


class MotoProcess:
    """moto's server in a child process, with ThreadedMotoServer's start/stop interface."""

    def __init__(self, host: str, *, ready_timeout_s: float = 30.0) -> None:
        self.host = host
        self.port = 0
        self._ready_timeout_s = ready_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoProcess:
        """Start it on a free port and wait until it accepts connections."""
        with socket.socket() as probe:
            probe.bind((self.host, 0))
            self.port = probe.getsockname()[1]
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, moto's own server
            [sys.executable, "-m", "brief_local.motoserver", "-H", self.host, "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self._ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto's server exited with {self._process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto's server did not start within {self._ready_timeout_s:g} s")

    def get_host_and_port(self) -> tuple[str, int]:
        """Where it listens."""
        return self.host, self.port

    def stop(self) -> None:
        """Terminate it (and kill it if it does not go)."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


class LocalStack:
    """Brief's stack on this machine; use `async with LocalStack(...) as stack`."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.template = Template.load(self.options.template or find_template())
        # moto keeps its state per process, not per server: two stacks in one process (tests,
        # or the demo beside `brief local`) would share queues and buckets. Each stack's names
        # are its own, as two deployed stacks' are.
        self.name = self.options.name or f"brief-{secrets.token_hex(3)}"
        self.endpoint = ""
        self.api_url = ""
        self.bucket = ""
        self.queue_urls: dict[str, str] = {}
        self.mappings: list[EventSourceMapping] = []
        self.schedules: list[Schedule] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._moto: Any = None
        self._pools: list[FunctionPool] = []
        self._uvicorn: Any = None
        self._api_container: Container | None = None
        faults = self.options.faults
        # What every function's wiring calls with each AWS client it builds.
        self.client_hook = _joined(
            faults.install if faults is not None else None, self.options.client_hook
        )
        self._serve: asyncio.Task[None] | None = None
        self._saved_env: dict[str, str | None] = {}
        self.function_environment: dict[str, str] = {}
        self._exit = contextlib.AsyncExitStack()
        self._frozen = False
        self._mirror: BucketMirror | None = None
        self._mirroring: asyncio.Task[None] | None = None
        self.restored = 0  # objects put back from `data_dir` at start

    async def __aenter__(self) -> LocalStack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start moto, create the resources, start the pollers and the API."""
        if self.client_hook is not None and self.options.function_processes:
            raise ValueError(
                "faults and client hooks reach the functions' clients only when they run on threads"
            )
        if self.options.moto_process:
            self._moto = await asyncio.to_thread(MotoProcess(self.options.host).start)
        else:
            from moto.server import ThreadedMotoServer

            from brief_local.motoserver import prepare

            prepare()
            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request
            self._moto = ThreadedMotoServer(ip_address=self.options.host, port=0, verbose=False)
            self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        # Credentials and region are the same for every local stack, so the process may hold
        # them; everything else a function reads is its own (see `function_environment`).
        self._set_env(
            {
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",  # moto accepts any key
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
            }
        )
        import aioboto3

        # Every container's sessions parse the same service models: once per process here.
        self._exit.enter_context(service_models.shared())
        session = aioboto3.Session()
        s3 = await self._exit.enter_async_context(
            session.client("s3", region_name=REGION, endpoint_url=self.endpoint)
        )
        sqs = await self._exit.enter_async_context(
            session.client("sqs", region_name=REGION, endpoint_url=self.endpoint)
        )
        refs, attrs = await self._create_resources(s3, sqs)
        if self.options.data_dir is not None:
            self._mirror = BucketMirror(s3, self.bucket, self.options.data_dir)
            self.restored = await self._mirror.restore()
            self._mirroring = asyncio.create_task(self._mirror.run())
        self.function_environment = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            **self._function_environment(refs, attrs),
            # One user on loopback: anonymous callers are fine here unless keys are
            # configured (options.environment can turn it back on).
            "BRIEF_REQUIRE_AUTH": "false",
            **self.options.environment,
        }
        await self._start_mappings(session, attrs)
        self._start_schedules(refs, attrs)
        await self._start_api()
        # What the stack keeps for its life (modules, template, clients, server) is built now:
        # frozen, it is out of every later full collection's walk (see `brief.runtime`);
        # `stop` unfreezes it, garbage included, for the collector to take.
        gc.freeze()
        self._frozen = True

    async def _create_resources(
        self, s3: Any, sqs: Any
    ) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
        refs: dict[str, str] = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": self.name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        # Parameters take their defaults, as `sam deploy` would, unless overridden.
        refs |= {name: str(value) for name, value in self.template.parameters.items()}
        refs |= dict(self.options.parameters)
        attrs: dict[tuple[str, str], str] = {}
        for logical_id in self.template.buckets:
            name = f"{self.name}-{logical_id.lower()}"
            await s3.create_bucket(Bucket=name)
            refs[logical_id] = name
            attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
            self.bucket = self.bucket or name
        # Dead-letter queues first: a redrive policy names its DLQ's ARN.
        queues = sorted(self.template.queues.values(), key=lambda q: q.dead_letter is not None)
        for queue in queues:
            visibility = self.options.visibility_timeout_s or queue.visibility_timeout
            attributes = {
                "VisibilityTimeout": str(visibility),
                "ReceiveMessageWaitTimeSeconds": str(queue.wait_time_seconds),
            }
            if queue.dead_letter is not None:
                policy = {
                    "deadLetterTargetArn": attrs[(queue.dead_letter, "Arn")],
                    "maxReceiveCount": queue.max_receive_count or 5,
                }
                attributes["RedrivePolicy"] = json.dumps(policy)
            name = f"{self.name}-{queue.logical_id}" + (".fifo" if queue.fifo else "")
            if queue.fifo:
                attributes["FifoQueue"] = "true"
            url = (await sqs.create_queue(QueueName=name, Attributes=attributes))["QueueUrl"]
            refs[queue.logical_id] = url
            self.queue_urls[queue.logical_id] = url
            attrs[(queue.logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            attrs[(queue.logical_id, "QueueName")] = name
            attrs[(queue.logical_id, "QueueUrl")] = url
        return refs, attrs

    def _function_environment(
        self, refs: Mapping[str, str], attrs: Mapping[tuple[str, str], str]
    ) -> dict[str, str]:
        """Every function's variables, resolved (they must agree: one mapping serves all)."""
        merged: dict[str, str] = {}
        for function in self.template.functions.values():
            for name, raw in function.environment.items():
                value = resolve(raw, refs, attrs)
                if merged.get(name, value) != value:
                    raise ValueError(f"functions disagree on {name}; the local stack shares one")
                merged[name] = value
        return merged

    async def _start_mappings(self, session: Any, attrs: Mapping[tuple[str, str], str]) -> None:
        from aiobotocore.config import AioConfig

        for function in self.template.functions.values():
            if not function.sqs_events:
                continue
            # A mapping without MaximumConcurrency scales as Lambda lets it; here, as far as
            # max_pollers (combine has none: two pollers made it the bottleneck at scale).
            unbounded = self.options.max_pollers
            limit = max((e.max_concurrency or unbounded) for e in function.sqs_events)
            pool = FunctionPool(
                function,
                concurrency=min(limit, self.options.max_pollers),
                environment=self.function_environment,
                processes=self.options.function_processes,
                client_hook=self.client_hook,
            )
            self._pools.append(pool)
            for event in function.sqs_events:
                pollers = min(event.max_concurrency or unbounded, self.options.max_pollers)
                # A client per mapping, with a connection per poller and room to spare for
                # deletes: long polls hold their connections, and a shared pool would make a
                # batch's delete wait behind other queues' polls.
                config = AioConfig(max_pool_connections=pollers + 4)
                sqs = await self._exit.enter_async_context(
                    session.client(
                        "sqs", region_name=REGION, endpoint_url=self.endpoint, config=config
                    )
                )
                mapping = EventSourceMapping(
                    sqs,
                    self.queue_urls[event.queue],
                    attrs[(event.queue, "Arn")],
                    event,
                    pool,
                    pollers=pollers,
                    wait_s=self.options.poll_wait_s,
                    retry_after_s=self.options.retry_after_s,
                    region=REGION,
                    faults=self.options.faults,
                )
                mapping.start()
                self.mappings.append(mapping)

    def _start_schedules(
        self, refs: Mapping[str, str], attrs: Mapping[tuple[str, str], str]
    ) -> None:
        """Run each function's Schedule events, as EventBridge would (one run at a time)."""
        self._loop = asyncio.get_running_loop()
        for function in self.template.functions.values():
            events = [e for e in function.schedules if e.enabled]
            if not events:
                continue
            pool = FunctionPool(
                function,
                concurrency=1,
                environment=self.function_environment,
                processes=self.options.function_processes,
                client_hook=self.client_hook,
            )
            self._pools.append(pool)
            for event in events:
                every_s = self.options.schedule_every_s or rate_seconds(
                    resolve(event.expression, refs, attrs)
                )
                rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{self.name}-{function.logical_id}"
                schedule = Schedule(
                    f"{function.logical_id}.{event.name}",
                    pool.invoke,
                    every_s,
                    rule_arn=f"{rule}{event.name}",
                    region=REGION,
                    account=ACCOUNT,
                )
                schedule.start()
                self.schedules.append(schedule)

    async def run_schedules(self) -> list[Any]:
        """Run every scheduled function once, now; their responses (e.g. the sweep's)."""
        return [await schedule.run_now() for schedule in self.schedules]

    def run_schedules_from_thread(self, timeout_s: float = 60) -> list[Any]:
        """`run_schedules` for a caller on another thread (a test beside `running_stack`)."""
        if self._loop is None:
            raise RuntimeError("the local stack is not running")
        future = asyncio.run_coroutine_threadsafe(self.run_schedules(), self._loop)
        return future.result(timeout=timeout_s)

    async def _start_api(self) -> None:
        import uvicorn

        api = next((f for f in self.template.functions.values() if f.http_api), None)
        if api is None:
            return
        module = await asyncio.to_thread(load_module, api)
        self._api_container = container_of(module)
        self._api_container.configure_host(
            environment=self.function_environment, client_hook=self.client_hook
        )
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
        # without it every response waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.options.host, self.options.api_port))
        # Event streams stay open for minutes; on shutdown they are cut after 2 s (the
        # clients resume with Last-Event-ID), or Ctrl-C would wait for every open page.
        config = uvicorn.Config(
            module.app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=API_KEEP_ALIVE_S,
            timeout_graceful_shutdown=2,
        )
        self._uvicorn = uvicorn.Server(config)
        self._serve = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
        while not self._uvicorn.started:
            if self._serve.done():
                await self._serve  # raises the server's start-up error
            await asyncio.sleep(0.01)
        port = sock.getsockname()[1]
        self.api_url = f"http://{self.options.host}:{port}"

    async def stop(self) -> None:
        """Stop the API and pollers, let in-flight batches finish, then stop moto."""
        if self._uvicorn is not None and self._serve is not None and self._api_container:
            self._uvicorn.should_exit = True
            await self._serve
            await self._api_container.aclose_wiring()  # built on this (uvicorn's) loop
            await asyncio.to_thread(self._api_container.close)
        await asyncio.gather(
            *(m.stop() for m in self.mappings), *(s.stop() for s in self.schedules)
        )
        for pool in self._pools:
            await pool.close()
        if self._mirroring is not None and self._mirror is not None:
            self._mirroring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._mirroring
            await self._mirror.sync()  # everything written up to the stop
        await self._exit.aclose()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        if self._frozen:
            gc.unfreeze()  # what the stack held can be collected again
            self._frozen = False

    def _set_env(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value


def _joined(*hooks: ClientHook | None) -> ClientHook | None:
    """One hook that calls each given hook in turn; None when none is given."""
    given = [hook for hook in hooks if hook is not None]
    if len(given) <= 1:
        return given[0] if given else None

    def joined(service: str, client: Any) -> None:
        for hook in given:
            hook(service, client)

    return joined


@contextlib.contextmanager
def running_stack(options: StackOptions | None = None) -> Iterator[LocalStack]:
    """The local stack on a thread of its own, for synchronous callers such as tests."""
    ready = threading.Event()
    stop = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        try:
            async with LocalStack(options) as stack:
                box["stack"] = stack
                ready.set()
                await asyncio.to_thread(stop.wait)
        except BaseException as exc:
            box["error"] = exc
            ready.set()
            raise

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="local-stack", daemon=True)
    thread.start()
    ready.wait(timeout=60)
    if "error" in box:
        raise RuntimeError("the local stack did not start") from box["error"]
    try:
        yield box["stack"]
    finally:
        stop.set()
        thread.join(timeout=60)
