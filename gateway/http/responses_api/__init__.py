"""The Responses API: ``POST /v1/responses`` (``endpoint.py``), its checks, files and stored state."""
