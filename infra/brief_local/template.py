"""Read the stack from template.yaml, so the local stack never re-declares a resource.

`Template.load` parses the AWS SAM template (CloudFormation short-form tags included) into
the few facts the local stack needs: which buckets and queues to create, how each queue
redrives, and how each function is run and fed (handler, timeout, environment, SQS events
as the event source mapping would deliver them). `resolve` turns the template's intrinsic
functions into strings once the local stack knows the names and ARNs it created.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.constructor import ConstructorError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "BucketSpec",
    "CloudFormationLoader",
    "FunctionSpec",
    "QueueSpec",
    "ScheduleEventSpec",
    "SqsEventSpec",
    "Template",
    "find_template",
    "rate_seconds",
    "resolve",
]

TEMPLATE_NAME = "template.yaml"

# SAM's own defaults, applied when neither Globals nor the function sets a value.
DEFAULT_TIMEOUT_S = 3
DEFAULT_MEMORY_MB = 128
# SQS's defaults for the queue attributes the local stack emulates.
DEFAULT_VISIBILITY_TIMEOUT_S = 30
DEFAULT_WAIT_TIME_S = 0
# The event source mapping's defaults for an SQS event.
DEFAULT_BATCH_SIZE = 10
DEFAULT_BATCHING_WINDOW_S = 0


# --------------------------------------------------------------------------- YAML


class CloudFormationLoader(yaml.SafeLoader):
    """A safe YAML loader that reads CloudFormation short-form tags as their long form.

    `!GetAtt Bucket.Arn` becomes `{"Fn::GetAtt": ["Bucket", "Arn"]}`, `!Ref X` becomes
    `{"Ref": "X"}`, and so on, so the rest of the code sees one shape for each intrinsic.
    Unquoted dates (`Version: 2012-10-17`) stay strings, as CloudFormation reads them.
    """


def _construct_node(loader: CloudFormationLoader, node: yaml.Node) -> Any:
    """The node's value, whatever its kind: intrinsics nest inside one another."""
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise ConstructorError(  # pragma: no cover - PyYAML has no other kind
        None, None, f"unexpected YAML node {node!r}", node.start_mark
    )


def _long_form(key: str) -> Callable[[CloudFormationLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: CloudFormationLoader, node: yaml.Node) -> dict[str, Any]:
        return {key: _construct_node(loader, node)}

    return construct


def _construct_get_att(loader: CloudFormationLoader, node: yaml.Node) -> dict[str, Any]:
    """`!GetAtt Res.Attr` or `!GetAtt [Res, Attr]`; `Res.Attr.Sub` keeps `Attr.Sub` whole."""
    value = _construct_node(loader, node)
    if isinstance(value, str):
        resource, dot, attribute = value.partition(".")
        if not (resource and dot and attribute):
            raise ConstructorError(
                None, None, f"!GetAtt {value!r} is not Resource.Attribute", node.start_mark
            )
        return {"Fn::GetAtt": [resource, attribute]}
    return {"Fn::GetAtt": value}


def _construct_timestamp(loader: CloudFormationLoader, node: yaml.Node) -> str:
    """Keep `2012-10-17` a string: CloudFormation has no date type."""
    if not isinstance(node, yaml.ScalarNode):  # pragma: no cover - timestamps are scalars
        raise ConstructorError(None, None, "a timestamp must be a scalar", node.start_mark)
    return loader.construct_scalar(node)


for _tag, _key in {
    "!Ref": "Ref",
    "!Condition": "Condition",
    "!Sub": "Fn::Sub",
    "!Join": "Fn::Join",
    "!If": "Fn::If",
    "!Select": "Fn::Select",
    "!Split": "Fn::Split",
    "!Equals": "Fn::Equals",
    "!Not": "Fn::Not",
    "!And": "Fn::And",
    "!Or": "Fn::Or",
    "!FindInMap": "Fn::FindInMap",
    "!ImportValue": "Fn::ImportValue",
    "!Base64": "Fn::Base64",
    "!GetAZs": "Fn::GetAZs",
    "!Cidr": "Fn::Cidr",
}.items():
    CloudFormationLoader.add_constructor(_tag, _long_form(_key))
CloudFormationLoader.add_constructor("!GetAtt", _construct_get_att)
CloudFormationLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class BucketSpec:
    """An S3 bucket the stack declares."""

    logical_id: str


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue and the attributes the local stack must reproduce."""

    logical_id: str
    visibility_timeout: int
    wait_time_seconds: int
    dead_letter: str | None
    """Logical id of the queue this one redrives to, if any."""
    max_receive_count: int | None
    fifo: bool


@dataclass(frozen=True)
class SqsEventSpec:
    """An SQS event source: how the event source mapping feeds a function."""

    name: str
    queue: str
    """Logical id of the queue it polls."""
    batch_size: int = DEFAULT_BATCH_SIZE
    batching_window_s: int = DEFAULT_BATCHING_WINDOW_S
    report_batch_item_failures: bool = False
    max_concurrency: int | None = None


@dataclass(frozen=True)
class ScheduleEventSpec:
    """A Schedule event: EventBridge invokes the function every `rate(...)`."""

    name: str
    expression: object
    """`rate(5 minutes)`, or an intrinsic (`!Ref SweepSchedule`) the stack resolves with
    its parameters; `rate_seconds` reads the resolved string."""
    enabled: bool = True


_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_RATE_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    """Seconds between runs of a `rate(N unit)` schedule; ValueError for anything else
    (a cron() schedule has no fixed interval the local stack could keep)."""
    match = _RATE.fullmatch(expression.strip())
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f"the local stack runs rate(N minutes|hours|days) schedules, not {expression!r}"
        )
    return int(match.group(1)) * _RATE_UNIT_S[match.group(2).rstrip("s")]


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function as SAM deploys it, with Globals and SAM's defaults applied."""

    logical_id: str
    code_uri: Path
    """Absolute directory of the function's code."""
    handler: str
    module: str
    attribute: str
    timeout: int
    memory: int
    runtime: str
    environment: dict[str, object]
    """Globals' variables merged with the function's own; values are not resolved."""
    sqs_events: tuple[SqsEventSpec, ...] = ()
    http_api: bool = False
    """True when API Gateway (an HttpApi or Api event) invokes it."""
    schedules: tuple[ScheduleEventSpec, ...] = ()


@dataclass(frozen=True)
class Template:
    """The parts of template.yaml the local stack runs: buckets, queues and functions."""

    path: Path
    raw: dict[str, Any]
    functions: dict[str, FunctionSpec]
    queues: dict[str, QueueSpec]
    buckets: dict[str, BucketSpec]
    outputs: dict[str, object]
    """Output name -> its unresolved Value."""
    parameters: dict[str, object] = field(default_factory=dict)
    """Parameter name -> its Default (parameters without one are left out)."""

    @classmethod
    def load(cls, path: Path) -> Template:
        """Parse `path`; raise ValueError when the template asks for what cannot run locally."""
        path = path.resolve()
        with path.open(encoding="utf-8") as stream:
            raw = yaml.load(stream, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader
        if not isinstance(raw, dict) or not isinstance(raw.get("Resources"), dict):
            raise ValueError(f"{path}: not a CloudFormation template (no Resources mapping)")

        parameters = {
            name: spec["Default"]
            for name, spec in _mapping(raw.get("Parameters"), "Parameters").items()
            if isinstance(spec, dict) and "Default" in spec
        }
        numbers = _NumberReader(parameters)
        resources: dict[str, Any] = raw["Resources"]

        buckets = {
            logical_id: BucketSpec(logical_id)
            for logical_id, resource in resources.items()
            if _type(resource) == "AWS::S3::Bucket"
        }
        queues = {
            logical_id: _queue(logical_id, _properties(logical_id, resource), numbers)
            for logical_id, resource in resources.items()
            if _type(resource) == "AWS::SQS::Queue"
        }
        for queue in queues.values():
            if queue.dead_letter is not None and queue.dead_letter not in queues:
                raise ValueError(
                    f"{queue.logical_id} redrives to {queue.dead_letter!r}, "
                    "which is not a queue in this template"
                )

        function_globals = _mapping(
            _mapping(raw.get("Globals"), "Globals").get("Function"), "Globals.Function"
        )
        functions: dict[str, FunctionSpec] = {}
        for logical_id, resource in resources.items():
            if _type(resource) != "AWS::Serverless::Function":
                continue
            properties = _merge_globals(function_globals, _properties(logical_id, resource))
            function = _function(logical_id, properties, path.parent, numbers)
            for event in function.sqs_events:
                if event.queue not in queues:
                    raise ValueError(
                        f"{logical_id}.{event.name} polls {event.queue!r}, "
                        "which is not a queue in this template"
                    )
            functions[logical_id] = function
        # Event source mappings declared as resources (so a role can be scoped to its queue)
        # feed their function exactly as its SQS events would.
        for logical_id, resource in resources.items():
            if _type(resource) != "AWS::Lambda::EventSourceMapping":
                continue
            properties = _properties(logical_id, resource)
            target = properties.get("FunctionName")
            if not (isinstance(target, dict) and target.get("Ref") in functions):
                raise ValueError(f"{logical_id}.FunctionName must be !Ref a function here")
            function = functions[target["Ref"]]
            queue_properties = {**properties, "Queue": properties.get("EventSourceArn")}
            event = _sqs_event(function.logical_id, logical_id, queue_properties, numbers)
            if event.queue not in queues:
                raise ValueError(f"{logical_id} polls {event.queue!r}, not a queue here")
            functions[function.logical_id] = dataclasses.replace(
                function, sqs_events=(*function.sqs_events, event)
            )

        outputs = {
            name: output.get("Value")
            for name, output in _mapping(raw.get("Outputs"), "Outputs").items()
            if isinstance(output, dict)
        }
        return cls(
            path=path,
            raw=raw,
            functions=functions,
            queues=queues,
            buckets=buckets,
            outputs=outputs,
            parameters=parameters,
        )


def find_template(start: Path | None = None) -> Path:
    """The repository's template.yaml: the nearest one at or above `start`.

    Without `start`, looks above this package first (the checkout it is installed from),
    then above the working directory.
    """
    bases = [start] if start is not None else [Path(__file__).resolve().parent, Path.cwd()]
    for base in bases:
        base = base.resolve()
        if base.is_file():
            base = base.parent
        for directory in (base, *base.parents):
            candidate = directory / TEMPLATE_NAME
            if candidate.is_file():
                return candidate
    searched = ", ".join(str(base) for base in bases)
    raise FileNotFoundError(f"no {TEMPLATE_NAME} at or above {searched}")


# --------------------------------------------------------------------------- parsing


def _type(resource: object) -> object:
    return resource.get("Type") if isinstance(resource, dict) else None


def _mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping, not {type(value).__name__}")
    return value


def _properties(logical_id: str, resource: dict[str, Any]) -> dict[str, Any]:
    return _mapping(resource.get("Properties"), f"{logical_id}.Properties")


def _is_intrinsic(value: object) -> bool:
    """True for `{"Ref": ...}`, `{"Fn::Sub": ...}` and the like: values, not mappings."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key,) = value
    return key in ("Ref", "Condition") or (isinstance(key, str) and key.startswith("Fn::"))


def _merge_globals(globals_: object, own: object) -> Any:
    """SAM's Globals rules: mappings merge, lists add up (Globals first), scalars override."""
    if isinstance(globals_, dict) and isinstance(own, dict):
        if _is_intrinsic(globals_) or _is_intrinsic(own):
            return own
        merged = dict(globals_)
        for key, value in own.items():
            merged[key] = _merge_globals(globals_[key], value) if key in globals_ else value
        return merged
    if isinstance(globals_, list) and isinstance(own, list):
        return [*globals_, *own]
    return own


class _NumberReader:
    """Reads numeric properties, which may be `!Ref` to a parameter with a Default."""

    def __init__(self, parameters: Mapping[str, object]) -> None:
        self._parameters = parameters

    @property
    def parameters(self) -> Mapping[str, object]:
        """The template's parameters and their defaults."""
        return self._parameters

    def __call__(self, value: object, where: str) -> int:
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in self._parameters:
            value = self._parameters[value["Ref"]]
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"{where} must be a whole number, not {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{where} must be a whole number, not {value!r}") from None


def _flag(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{where} must be true or false, not {value!r}")


def _queue_logical_id(value: object, where: str) -> str:
    """The logical id behind `!GetAtt Queue.Arn`: the only form the local stack can follow."""
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        if isinstance(target, str):
            target = target.split(".", 1)
        if isinstance(target, list) and len(target) == 2 and target[1] == "Arn":
            logical_id = target[0]
            if isinstance(logical_id, str):
                return logical_id
    raise ValueError(f"{where} must be !GetAtt <Queue>.Arn of a queue in this template: {value!r}")


def _queue(logical_id: str, properties: dict[str, Any], number: _NumberReader) -> QueueSpec:
    where = f"{logical_id}.Properties"
    dead_letter: str | None = None
    max_receive_count: int | None = None
    redrive = properties.get("RedrivePolicy")
    if isinstance(redrive, str):  # RedrivePolicy is JSON: a mapping or a JSON string
        redrive = json.loads(redrive)
    if redrive is not None:
        redrive = _mapping(redrive, f"{where}.RedrivePolicy")
        dead_letter = _queue_logical_id(
            redrive.get("deadLetterTargetArn"), f"{where}.RedrivePolicy.deadLetterTargetArn"
        )
        max_receive_count = number(
            redrive.get("maxReceiveCount"), f"{where}.RedrivePolicy.maxReceiveCount"
        )
    return QueueSpec(
        logical_id=logical_id,
        visibility_timeout=number(
            properties.get("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT_S),
            f"{where}.VisibilityTimeout",
        ),
        wait_time_seconds=number(
            properties.get("ReceiveMessageWaitTimeSeconds", DEFAULT_WAIT_TIME_S),
            f"{where}.ReceiveMessageWaitTimeSeconds",
        ),
        dead_letter=dead_letter,
        max_receive_count=max_receive_count,
        fifo=_flag(properties.get("FifoQueue", False), f"{where}.FifoQueue"),
    )


def _sqs_event(
    function_id: str, name: str, properties: dict[str, Any], number: _NumberReader
) -> SqsEventSpec:
    where = f"{function_id}.Events.{name}.Properties"
    scaling = _mapping(properties.get("ScalingConfig"), f"{where}.ScalingConfig")
    response_types = properties.get("FunctionResponseTypes") or []
    if not isinstance(response_types, list):
        raise ValueError(f"{where}.FunctionResponseTypes must be a list")
    max_concurrency = scaling.get("MaximumConcurrency")
    return SqsEventSpec(
        name=name,
        queue=_queue_logical_id(properties.get("Queue"), f"{where}.Queue"),
        batch_size=number(properties.get("BatchSize", DEFAULT_BATCH_SIZE), f"{where}.BatchSize"),
        batching_window_s=number(
            properties.get("MaximumBatchingWindowInSeconds", DEFAULT_BATCHING_WINDOW_S),
            f"{where}.MaximumBatchingWindowInSeconds",
        ),
        report_batch_item_failures="ReportBatchItemFailures" in response_types,
        max_concurrency=(
            None
            if max_concurrency is None
            else number(max_concurrency, f"{where}.ScalingConfig.MaximumConcurrency")
        ),
    )


def _function(
    logical_id: str, properties: dict[str, Any], root: Path, number: _NumberReader
) -> FunctionSpec:
    where = f"{logical_id}.Properties"
    code_uri = properties.get("CodeUri")
    if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
        raise ValueError(f"{where}.CodeUri must be a local directory, not {code_uri!r}")
    handler = properties.get("Handler")
    if not isinstance(handler, str) or not all(handler.rpartition(".")):
        raise ValueError(f"{where}.Handler must be of the form module.function, not {handler!r}")
    module, _, attribute = handler.rpartition(".")
    runtime = properties.get("Runtime")
    if not isinstance(runtime, str):
        raise ValueError(f"{where}.Runtime must be set (here or in Globals), not {runtime!r}")

    variables = _mapping(
        _mapping(properties.get("Environment"), f"{where}.Environment").get("Variables"),
        f"{where}.Environment.Variables",
    )
    sqs_events: list[SqsEventSpec] = []
    schedules: list[ScheduleEventSpec] = []
    http_api = False
    for name, event in _mapping(properties.get("Events"), f"{where}.Events").items():
        event = _mapping(event, f"{where}.Events.{name}")
        kind = event.get("Type")
        if kind == "SQS":
            event_properties = _mapping(event.get("Properties"), f"{where}.Events.{name}")
            sqs_events.append(_sqs_event(logical_id, name, event_properties, number))
        elif kind in ("HttpApi", "Api"):
            http_api = True
        elif kind == "Schedule":
            event_properties = _mapping(event.get("Properties"), f"{where}.Events.{name}")
            schedules.append(_schedule(name, event_properties, f"{where}.Events.{name}", number))
    return FunctionSpec(
        logical_id=logical_id,
        code_uri=(root / code_uri).resolve(),
        handler=handler,
        module=module,
        attribute=attribute,
        timeout=number(properties.get("Timeout", DEFAULT_TIMEOUT_S), f"{where}.Timeout"),
        memory=number(properties.get("MemorySize", DEFAULT_MEMORY_MB), f"{where}.MemorySize"),
        runtime=runtime,
        environment=dict(variables),
        sqs_events=tuple(sqs_events),
        http_api=http_api,
        schedules=tuple(schedules),
    )


def _schedule(
    name: str, properties: dict[str, Any], where: str, number: _NumberReader
) -> ScheduleEventSpec:
    """A Schedule event; a literal expression, or a parameter's default, is checked now."""
    expression = properties.get("Schedule")
    literal = expression
    if isinstance(expression, dict) and set(expression) == {"Ref"}:
        literal = number.parameters.get(expression["Ref"])
    if isinstance(literal, str):
        rate_seconds(literal)  # raises for what the local stack cannot run
    elif not isinstance(expression, dict):
        raise ValueError(f"{where}.Properties.Schedule must be rate(...), not {expression!r}")
    enabled = properties.get("Enabled", True)
    if "State" in properties:
        enabled = properties["State"] == "ENABLED"
    return ScheduleEventSpec(
        name=name, expression=expression, enabled=_flag(enabled, f"{where}.Properties.Enabled")
    )


# --------------------------------------------------------------------------- resolving

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def resolve(value: object, refs: Mapping[str, str], attrs: Mapping[tuple[str, str], str]) -> str:
    """The string `value` stands for, given what `Ref` and `Fn::GetAtt` resolve to.

    `refs` maps logical ids, parameters and pseudo parameters (`AWS::Region`) to their
    values; `attrs` maps `(logical id, attribute)` to a value. Supports Ref, Fn::GetAtt,
    Fn::Sub (both forms) and Fn::Join; anything else raises ValueError naming it.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int; CloudFormation writes "true"
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return _ref(argument, refs)
        if function == "Fn::GetAtt":
            return _get_att(argument, attrs)
        if function == "Fn::Sub":
            return _sub(argument, refs, attrs)
        if function == "Fn::Join":
            return _join(argument, refs, attrs)
        raise ValueError(f"cannot resolve {function}: only Ref, Fn::GetAtt, Fn::Sub and Fn::Join")
    raise ValueError(f"cannot resolve {value!r} to a string")


def _ref(name: object, refs: Mapping[str, str]) -> str:
    if not isinstance(name, str):
        raise ValueError(f"cannot resolve Ref to {name!r}: not a name")
    try:
        return refs[name]
    except KeyError:
        known = ", ".join(sorted(refs)) or "none"
        raise ValueError(f"cannot resolve Ref {name!r}: unknown name (known: {known})") from None


def _get_att(argument: object, attrs: Mapping[tuple[str, str], str]) -> str:
    if isinstance(argument, str):
        argument = argument.split(".", 1)
    if not (
        isinstance(argument, list)
        and len(argument) == 2
        and all(isinstance(part, str) for part in argument)
    ):
        raise ValueError(f"cannot resolve Fn::GetAtt {argument!r}: expected [resource, attribute]")
    key = (argument[0], argument[1])
    try:
        return attrs[key]
    except KeyError:
        raise ValueError(f"cannot resolve Fn::GetAtt {'.'.join(key)}: unknown attribute") from None


def _sub(argument: object, refs: Mapping[str, str], attrs: Mapping[tuple[str, str], str]) -> str:
    variables: Mapping[str, object] = {}
    if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
        argument, variables = argument
    if not isinstance(argument, str):
        raise ValueError(f"cannot resolve Fn::Sub {argument!r}: expected a string")

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name.startswith("!"):  # ${!Literal} is the escape for a literal ${Literal}
            return "${" + name[1:] + "}"
        if name in variables:
            return resolve(variables[name], refs, attrs)
        if name in refs:
            return refs[name]
        resource, dot, attribute = name.partition(".")
        if dot and not name.startswith("AWS::"):
            return _get_att([resource, attribute], attrs)
        return _ref(name, refs)

    return _SUB_VARIABLE.sub(substitute, argument)


def _join(argument: object, refs: Mapping[str, str], attrs: Mapping[tuple[str, str], str]) -> str:
    if not (
        isinstance(argument, list)
        and len(argument) == 2
        and isinstance(argument[0], str)
        and isinstance(argument[1], list)
    ):
        raise ValueError(f"cannot resolve Fn::Join {argument!r}: expected [delimiter, [values]]")
    delimiter: str = argument[0]
    return delimiter.join(resolve(item, refs, attrs) for item in argument[1])
