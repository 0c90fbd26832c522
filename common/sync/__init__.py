"""The sync: the rules (``planner``), the guards (``guard``, on the state ``safety`` keeps),
carrying out a plan (``applier``), keeping what a run did (``record``), and one run
read -> plan -> guard -> apply -> record (``engine``), with what a process builds once
(``services``).

May import everything else in ``common``; nothing in ``common`` imports it.
"""
