"""The Microsoft 365 side: tokens, the Graph client, Graph's answers as typed objects, SDS names,
and reading a tenant (or one object) into ``common.model`` state.

May import the top of ``common`` (config, errors, http, logs, model); never ``portal``, ``state``
or ``sync``.
"""
