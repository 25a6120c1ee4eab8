"""Backend adapters: how the gateway talks to a model server."""
