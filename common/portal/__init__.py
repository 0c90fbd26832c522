"""The portal side: the ``Portal`` seam and its SCIM 2.0 implementation.

``protocol`` (the seam), ``discovery`` (what a server declares), ``mapping`` (where attributes
go there), ``codec`` (model <-> SCIM), ``filters`` (filter forms and fallbacks), ``wire`` (HTTP
requests and answers), ``learning`` (what this process learnt of each server), ``client``
(``ScimPortal``), ``check`` (``skolsynk portal check``), ``scim`` (names).

May import the top of ``common`` (config, errors, http, logs, model); never ``graph``, ``state``
or ``sync``.
"""
