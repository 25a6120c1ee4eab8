"""The batch object and result lines against OpenAI's published description."""

from __future__ import annotations

import orjson

from gateway.services.batches.objects import batch_object, error_line, result_line
from gateway.services.batches.store import TIMES, BatchRow
from tests.support.openapi import validate


def row(status: str, **times: int) -> BatchRow:
    return BatchRow("batch_1", "t", None, "/v1/embeddings", "file-1", "24h", status, 100, 200,
                    {**dict.fromkeys(TIMES), **times}, "file-out" if status == "completed" else None, None,
                    None, {"k": "v"}, 3, 1, 0, 0)


def test_a_batch_validates_with_absent_times_and_files_left_out() -> None:
    fresh = batch_object(row("validating"), 0, 0)
    validate(fresh, "Batch")
    assert "output_file_id" not in fresh and "in_progress_at" not in fresh
    done = batch_object(row("completed", in_progress_at=101, finalizing_at=150, completed_at=151), 2, 1)
    validate(done, "Batch")
    assert done["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert done["output_file_id"] == "file-out" and done["completed_at"] == 151


def test_result_and_error_lines() -> None:
    ok = orjson.loads(result_line("c1", 200, "req_1", {"object": "list"}))
    assert ok["custom_id"] == "c1" and ok["response"] == {"status_code": 200, "request_id": "req_1",
                                                          "body": {"object": "list"}}
    assert ok["error"] is None and ok["id"].startswith("batch_req_")
    late = orjson.loads(error_line("c2", "batch_expired", "too late"))
    assert late["response"] is None and late["error"] == {"code": "batch_expired", "message": "too late"}
