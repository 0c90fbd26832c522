"""The portal side: the ``Portal`` seam and its SCIM 2.0 implementation.

May import the top of ``common`` (config, errors, http, logs, model); never ``graph``, ``state``
or ``sync``.
"""
