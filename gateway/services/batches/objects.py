"""Rows as OpenAI's ``batch`` object, and the lines of the output and error files."""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from gateway.services.batches.store import BatchRow

FINAL = frozenset({"completed", "failed", "expired", "cancelled"})


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(16)


def batch_object(row: BatchRow, completed: int, failed: int) -> dict[str, Any]:
    """OpenAI's shape: absent times and files are left out (the published description types them as
    strings and integers, not null)."""
    doc: dict[str, Any] = {
        "id": row.id, "object": "batch", "endpoint": row.endpoint, "input_file_id": row.input_file_id,
        "completion_window": row.completion_window, "status": row.status, "created_at": row.created_at,
        "expires_at": row.expires_at,
        "request_counts": {"total": row.total, "completed": completed, "failed": failed},
        "metadata": row.metadata,
    }
    doc.update({k: v for k, v in row.times.items() if v is not None})
    if row.output_file_id:
        doc["output_file_id"] = row.output_file_id
    if row.error_file_id:
        doc["error_file_id"] = row.error_file_id
    if row.errors:
        doc["errors"] = row.errors
    return doc


def result_line(custom_id: str, status: int, request_id: str, body: Any) -> str:
    """One line of the output (2xx) or error file: the request's reply as the interactive API gave it."""
    return orjson.dumps({"id": "batch_req_" + secrets.token_hex(12), "custom_id": custom_id,
                         "response": {"status_code": status, "request_id": request_id, "body": body},
                         "error": None}).decode()


def error_line(custom_id: str, code: str, message: str) -> str:
    """A line that got no reply (the batch expired before it ran)."""
    return orjson.dumps({"id": "batch_req_" + secrets.token_hex(12), "custom_id": custom_id, "response": None,
                         "error": {"code": code, "message": message}}).decode()
