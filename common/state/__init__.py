"""Skolsynk's state in Redis: tenants, queues and job guards, runs, audit log, subscriptions,
telemetry. The listener needs only this package.

May import the top of ``common`` (config, errors, logs, model); never ``graph``, ``portal`` or
``sync``.
"""
