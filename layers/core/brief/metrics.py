"""Metrics as CloudWatch embedded metric format (EMF) lines, through Powertools; no-ops
until `configure` is called, which the runtime does only in Lambda.

Stages call `count`, `duration` and `amount` wherever something happens; the runtime calls
`flush` at the end of each invocation. A metric without dimensions is aggregated with the
invocation's others into one EMF line (dimension `service`); a metric with dimensions
(`duration("StageDuration", ms, stage="summarize")`) is written at once as a line of its own,
because one EMF document has one set of dimensions. Keep dimension values few (a stage, an
error kind), never a job id: each distinct value is a separate CloudWatch metric.

The metrics Brief emits:

| name | unit | dimensions | when |
|---|---|---|---|
| `JobsStarted` | Count | | a job is stored and queued (intake) |
| `JobsCompleted` | Count | | a report is written (combine) |
| `JobsFailed` | Count | `stage` | a job is marked failed |
| `JobsStalled` | Count | | the sweeper failed jobs that made no progress (sweeper) |
| `FanInsResumed` | Count | | the sweeper sent a combine whose fan-in never had (sweeper) |
| `StageDuration` | Milliseconds | `stage` | retrieval, each summary, the combine |
| `FetchFailures` | Count | | a source could not be used |
| `InputTokens`, `OutputTokens` | Count | | model usage of a summary or combine |
| `ModelCostUSD` | None | | its estimated price |
| `ColdStart` | Count | `function_name` | a container's first invocation |
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from brief.models import Usage

__all__ = [
    "amount",
    "configure",
    "count",
    "disable",
    "duration",
    "enabled",
    "flush",
    "record_usage",
]

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "Brief"


class _Emitter:
    """Powertools' Metrics for aggregated metrics, `single_metric` for dimensioned ones."""

    def __init__(self, namespace: str, service: str) -> None:
        from aws_lambda_powertools.metrics import (  # deferred: only Lambda containers pay
            Metrics,
            MetricUnit,
            MetricUnitError,
            MetricValueError,
            SchemaValidationError,
            single_metric,
        )
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf.exceptions import (
            MetricNameError,
        )

        self.namespace = namespace
        self.service = service
        self._units = MetricUnit
        self._single = single_metric
        self._errors: tuple[type[Exception], ...] = (
            ValueError,  # a unit CloudWatch does not know
            MetricNameError,
            MetricUnitError,
            MetricValueError,
            SchemaValidationError,
        )
        self._metrics = Metrics(namespace=namespace, service=service)
        self._metrics.clear_metrics()  # the metric set is shared by every Metrics instance
        self._pending = False

    def add(self, name: str, unit: str, value: float, dimensions: dict[str, str]) -> None:
        try:
            if dimensions:
                with self._single(
                    name=name,
                    unit=self._units(unit),
                    value=value,
                    namespace=self.namespace,
                    default_dimensions={"service": self.service, **dimensions},
                ):
                    pass
            else:
                self._metrics.add_metric(name=name, unit=self._units(unit), value=value)
                self._pending = True
        except self._errors as exc:  # a bad metric must not fail the work
            log.warning("metric dropped", extra={"metric": name, "reason": str(exc)})

    def flush(self) -> None:
        if self._pending:
            self._pending = False
            self._metrics.flush_metrics()

    def clear(self) -> None:
        self._metrics.clear_metrics()
        self._pending = False


_emitter: _Emitter | None = None


def configure(namespace: str | None = None, service: str | None = None) -> None:
    """Start emitting (Lambda containers): namespace and service default to Powertools'
    variables POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME."""
    global _emitter
    namespace = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
    service = service or os.environ.get("POWERTOOLS_SERVICE_NAME") or "brief"
    _emitter = _Emitter(namespace, service)


def disable() -> None:
    """Stop emitting and drop what was not flushed."""
    global _emitter
    if _emitter is not None:
        _emitter.clear()
    _emitter = None


def enabled() -> bool:
    """True once `configure` was called."""
    return _emitter is not None


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """Something happened `value` times."""
    if _emitter is not None:
        _emitter.add(name, "Count", value, dimensions)


def duration(name: str, ms: float, **dimensions: str) -> None:
    """Something took `ms` milliseconds."""
    if _emitter is not None:
        _emitter.add(name, "Milliseconds", ms, dimensions)


def amount(name: str, value: float, unit: str = "None", **dimensions: str) -> None:
    """Any other quantity, in one of CloudWatch's units ("Count", "Bytes", "None", ...)."""
    if _emitter is not None:
        _emitter.add(name, unit, value, dimensions)


def flush() -> None:
    """Write the invocation's aggregated metrics as one EMF line (nothing if there are none)."""
    if _emitter is not None:
        _emitter.flush()


def record_usage(usage: Usage) -> None:
    """Tokens and cost of model calls, when there were any."""
    if _emitter is None or not usage.calls:
        return
    count("InputTokens", usage.input_tokens)
    count("OutputTokens", usage.output_tokens)
    amount("ModelCostUSD", usage.cost_usd)
