"""Response cache stage ("cache"): exact (Redis or in-process LRU) and opt-in semantic."""
