"""The authn stage: bearer → ``ctx.principal`` (an ``Identity``), or 401."""
