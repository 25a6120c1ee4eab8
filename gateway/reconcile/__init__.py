"""Declarative state reconciled live: what changed (``plan``), the atomic swap of request paths
(``switch``), and the loop that applies desired state from the file, SIGHUP and the admin API
(``controller``), with each resource's state (``state``)."""
