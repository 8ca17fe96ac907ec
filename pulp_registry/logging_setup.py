"""Logging for the server processes, configured once from ``settings.log_level`` and ``settings.log_format``.

``text``: one readable line per record (``time LEVEL logger: message``, then any
``fields`` as ``key=value``). ``json``: one JSON object per line with ``time``,
``level``, ``logger``, ``message`` and the record's ``fields`` (passed as
``extra={"fields": {...}}``); an exception is the ``exception`` field, so no
record ever spans two lines. Records logged while a task runs carry its id
(``task_id``), taken from ``pulp_registry.tasks.CURRENT_TASK`` when that module
is loaded (Crane never loads it). Pure: Crane imports this module too.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(task_prefix)s%(message)s"
LOG_FORMATS = ("text", "json")
#: Loggers that print whole documents at DEBUG (pymongo's commands hold feed credentials and token records):
#: never below INFO, whatever ``log_level`` says.
CAPPED_LOGGERS = ("pymongo",)

_configured = False


def current_task_id() -> str | None:
    """The id of the task this thread runs (a worker), or None; never imports the task module itself."""
    tasks = sys.modules.get("pulp_registry.tasks")
    if tasks is None:
        return None
    task = tasks.CURRENT_TASK.get()
    return str(task["_id"]) if task and "_id" in task else None


class TaskIdFilter(logging.Filter):
    """Adds ``task_id`` (or None) and ``task_prefix`` (``[task ID] `` or empty) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "task_id"):
            record.task_id = current_task_id()
        record.task_prefix = f"[task {record.task_id}] " if record.task_id else ""
        return True


class TextFormatter(logging.Formatter):
    """The readable line, with ``fields`` appended as ``key=value``; tracebacks stay multi-line here."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "task_prefix"):
            TaskIdFilter().filter(record)
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join(f"{key}={_text_value(value)}" for key, value in fields.items())
        return line


def _text_value(value: Any) -> str:
    text = "-" if value is None else str(value)
    return json.dumps(text) if (not text or any(c.isspace() or c == '"' for c in text)) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        task_id = getattr(record, "task_id", None) or current_task_id()
        if task_id:
            document["task_id"] = task_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            document.update(fields)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


def make_formatter(log_format: str = "text") -> logging.Formatter:
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format: {log_format!r} is not one of {', '.join(LOG_FORMATS)}")
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(level: str, log_format: str = "text") -> None:
    """Send log records to stderr at ``level`` in ``log_format``; later calls (another entry point
    in the same process) do nothing."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(TaskIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in CAPPED_LOGGERS:
        if root.level < logging.INFO:
            logging.getLogger(name).setLevel(logging.INFO)
    logging.captureWarnings(True)   # Python warnings become records in the same format, not raw stderr text
    _configured = True
