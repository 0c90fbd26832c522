"""Skolsynk's library: everything that is neither HTTP-serving nor a process.

At the top: ``config``, ``errors``, ``http`` (the one transport), ``logs`` and ``model`` (the
domain model every seam speaks). Below them, one sub-package per seam, in the order data flows:
``state`` (Redis: queues, tenants, runs, audit), ``graph`` (reading Microsoft 365), ``portal``
(writing SCIM 2.0), ``sync`` (the rules and their application). The import contract in
``pyproject.toml`` (import-linter) keeps the layers apart.
"""
