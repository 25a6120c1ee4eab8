"""Rate limits (requests and tokens per minute, per key, tenant and model) and budgets."""
