"""The reference learning-material portal: SCIM 2.0 for Users and Groups, plus what a real portal
holds beside the synced data (licences, manual groups, portal-only users), per school
organisation, persisted in SQLite.

Start it with ``skolsynk sandbox portal``; build it in-process with
``sandbox.portal.app.create_app``.
"""
