"""HTTP endpoints: parse and validate once, build a request context, run the chain."""
