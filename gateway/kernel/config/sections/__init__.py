"""One settings section per capability; each module is owned by that capability."""
