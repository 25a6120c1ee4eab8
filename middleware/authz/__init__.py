"""The authz stage: every request is decided by the policy engine; a deny is a 403 with reasons."""
