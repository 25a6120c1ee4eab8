"""Anthropic Messages ingress: ``/v1/messages`` and ``/v1/messages/count_tokens`` served through the chat chain."""
