"""The ``skolsynk`` command: one front for the sync, its operations and its sandbox."""
