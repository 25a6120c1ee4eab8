"""The "tools" stage: server-side tools offered to models and the agent loop that runs them on nodes."""
