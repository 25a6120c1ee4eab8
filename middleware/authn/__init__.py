"""The authn stage: bearer → ``ctx.principal`` (an ``Principal``), or 401."""
