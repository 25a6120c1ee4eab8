"""The gateway's file search in a Response: a ``file_search_call`` output item first, and ``file_citation``
annotations on the answer's text, for translated and passed-through responses alike.

A file is cited where the text names one of its chunks (``[file-abc#3]``, as the injected context
asks), else every retrieved file is cited at the end of the text.
"""

from __future__ import annotations

from typing import Any

from gateway.kernel.responses import FileSearch, new_id
from gateway.services.responses_wire.responses_object import TERMINAL

Event = dict[str, Any]


def search_item(fs: FileSearch, status: str = "completed") -> dict[str, Any]:
    results = [dict(r) for r in fs.results] if fs.include_results and status == "completed" else None
    return {"id": new_id("fs_"), "type": "file_search_call", "status": status, "queries": list(fs.queries),
            "results": results}


def citations_of(text: str, fs: FileSearch) -> list[dict[str, Any]]:
    files = {str(r["file_id"]): str(r.get("filename") or "") for r in fs.results}
    named = {fid: _named_at(text, fid) for fid in files}
    cited = {fid: at for fid, at in named.items() if at is not None} or dict.fromkeys(files, len(text))
    return [{"type": "file_citation", "file_id": fid, "filename": files[fid], "index": at}
            for fid, at in cited.items()]


def _named_at(text: str, file_id: str) -> int | None:
    start = text.find(f"[{file_id}#")
    if start < 0:
        return None
    end = text.find("]", start)
    return end + 1 if end >= 0 else len(text)


def _annotate_item(item: dict[str, Any], fs: FileSearch) -> None:
    if item.get("type") != "message":
        return
    for part in item.get("content") or ():
        if isinstance(part, dict) and part.get("type") == "output_text":
            part["annotations"] = citations_of(str(part.get("text") or ""), fs)


def cite_response(response: dict[str, Any], fs: FileSearch, item: dict[str, Any] | None = None) -> None:
    """``response`` with the search item first and its message texts annotated (in place)."""
    output = response.get("output") or []
    for existing in output:
        _annotate_item(existing, fs)
    response["output"] = [item or search_item(fs), *output]


class CitedEvents:
    """Rewrites a stream's events: the search item's events after ``response.in_progress``, every later
    ``output_index`` one further on, annotations before each ``output_text.done`` and in what follows."""

    def __init__(self, fs: FileSearch) -> None:
        self._fs = fs
        self._item = search_item(fs)
        self._inserted = False

    def __call__(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            kind = event["type"]
            if not self._inserted and kind not in ("response.created", "response.in_progress"):
                out += self._search_events()
            if "output_index" in event:
                event["output_index"] += 1
            if kind == "response.output_text.done":
                out += self._annotation_events(event)
            elif kind == "response.content_part.done" and event["part"].get("type") == "output_text":
                event["part"]["annotations"] = citations_of(str(event["part"].get("text") or ""), self._fs)
            elif kind == "response.output_item.done":
                _annotate_item(event["item"], self._fs)
            elif kind in TERMINAL:
                cite_response(event["response"], self._fs, self._item)
            out.append(event)
        return out

    def _search_events(self) -> list[Event]:
        self._inserted = True
        base = {"output_index": 0, "item_id": self._item["id"]}
        return [{"type": "response.output_item.added", "output_index": 0,
                 "item": {**search_item(self._fs, "in_progress"), "id": self._item["id"]}},
                {"type": "response.file_search_call.in_progress", **base},
                {"type": "response.file_search_call.searching", **base},
                {"type": "response.file_search_call.completed", **base},
                {"type": "response.output_item.done", "output_index": 0, "item": self._item}]

    def _annotation_events(self, done: Event) -> list[Event]:
        notes = citations_of(str(done.get("text") or ""), self._fs)
        return [{"type": "response.output_text.annotation.added", "item_id": done["item_id"],
                 "output_index": done["output_index"], "content_index": done["content_index"],
                 "annotation_index": i, "annotation": note} for i, note in enumerate(notes)]
