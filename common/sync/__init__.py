"""The sync: the rules (``planner``), the guards (``safety``), carrying out a plan (``applier``),
and one run read -> plan -> guard -> apply -> record (``engine``), with what a process builds
once (``services``).

May import everything else in ``common``; nothing in ``common`` imports it.
"""
