"""Durable jobs: procrastinate on the gateway's own PostgreSQL (``engine.py``)."""
