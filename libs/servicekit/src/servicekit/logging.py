"""JSON logs, one event per line, each carrying the service name, the request id and (when tracing is on)
the trace and span ids of the current OpenTelemetry span."""

import functools
import logging
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace


def add_trace_ids(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """trace_id and span_id, hex as Jaeger and Grafana show them, when a span is recording."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


@functools.cache
def standard_output() -> TextIO:
    """File descriptor 1, line-buffered, in a file object of the kit's own that nothing ever closes.

    Not ``sys.stdout``: whoever replaces that object may close it while a server thread writes a line
    to it (pytest's output capture does, between tests), and a write racing a close crashes CPython
    (SIGSEGV) instead of raising. Writes to the descriptor itself land wherever fd 1 points, captured or not.
    """
    return open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)


def configure_logging(service: str, level: str = "INFO", *, json: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, sqlalchemy) through one JSON renderer."""
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        lambda _logger, _name, event: {**event, "service": service},
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(standard_output()),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(standard_output())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # The request middleware logs one line per request; uvicorn's access log would repeat it, unstructured.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every outgoing request at INFO: three extra lines per GraphQL mutation, about a third of the
    # gateway's CPU per placeOrder. Upstream calls are already in the metrics and traces, and the clients log
    # their failures themselves.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
