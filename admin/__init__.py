"""The school administrator's web app: ``gunicorn 'admin.app:create_app()'``.

A school's Global Administrator signs in with Microsoft, connects the school (admin consent),
sets its portal connections and scope, previews, syncs to the test portal, goes live and looks
after it (dashboard, held removals, audit log, person lookup, "Synka nu"). Operators of the
portal (``SKOLSYNK_OPERATORS``) see every school. Everything it does goes through ``common``:
the registry, the engine, the safety state, the audit log and the dispatcher, as the CLI does.

Modules, one concern each: ``app`` (the factory), ``state`` (what a process holds), ``security``
(headers, cookies, CSRF errors), ``i18n`` (Swedish first, English by choice), ``identity`` (MSAL
sign-in and the Global Administrator check), ``access`` (who may open which school),
``signin_views``, ``connect_views``, ``portal_views``, ``scope_views``, ``preview_views``,
``run_views``, ``care_views``, ``lookup_views``, ``runner`` (runs started from a page),
``forms`` (checking what people type), ``pages`` (rendering helpers).
"""
