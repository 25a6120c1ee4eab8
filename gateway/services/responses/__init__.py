"""Server-side state of the Responses and Conversations APIs on PostgreSQL, scoped by tenant.

``ResponseState`` (``state.py``) is built by ``gateway/wiring.py`` and opened on first use:
``responses`` (``ResponseStore``), ``conversations`` (``ConversationStore`` and the rest of the
Conversations API), ``queue`` (the durable queue behind ``background: true`` and its stream events),
``serve_background``/``run_background`` (a ``BackgroundRunner`` for the gateway's work), the retention
sweep and lease recovery.
"""

from gateway.services.responses.state import ResponseState

__all__ = ["ResponseState"]
