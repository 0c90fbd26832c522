"""A stand-in for Microsoft Graph and Entra sign-in for school tenants fed by School Data Sync.

Run it with ``skolsynk sandbox graph`` (see ``cli``). It serves, over HTTPS with its own CA:

- sign-in per tenant and for ``common``/``organizations`` (``{tenant}`` below is a tenant id, a
  domain, ``common`` or ``organizations``): ``/{tenant}/v2.0/.well-known/openid-configuration``
  (``{tenantid}`` issuer template for common/organizations), ``/{tenant}/discovery/v2.0/keys``,
  ``POST /{tenant}/oauth2/v2.0/token`` (client credentials for Skolsynk's app once the tenant
  has consented, scope ``https://graph.microsoft.com/.default``; ``authorization_code`` with
  PKCE and ``refresh_token`` for people, see ``tokens``);
- people signing in (``signin``): ``GET|POST /{tenant}/oauth2/v2.0/authorize`` shows a
  Microsoft-shaped sign-in page posting ``loginfmt`` and ``passwd`` to ``/{tenant}/login``;
  ``/{tenant}/oauth2/v2.0/logout``; admin consent (``consent``): ``/{tenant}/adminconsent``
  and ``/{tenant}/v2.0/adminconsent`` with a consent page posting to ``/{tenant}/consent/set``;
- Graph v1.0 under ``/v1.0``: users, groups, members, owners, delta, education, the recycle
  bin, subscriptions and ``$batch`` (see ``app`` for the full list); for delegated tokens and
  apps alike ``/me``, directory roles, role assignments and ``/organization`` (``delegated``);
- the admin API under ``/_sandbox``, every call with ``Authorization: Bearer <admin_token>``:

  ``GET /_sandbox``                                 URLs and tenants
  ``GET /_sandbox/tenants``                         ``{"tenants": [{"id", "domain", "name"}]}``
  ``POST /_sandbox/tenants``                        body ``{"name"?, "load"?: [{"format":
                                                    "sds-classic"|"sds-uk"|"sds-v2"|"sds-v2.1",
                                                    "path": ...}], "strict"?: bool,
                                                    "generate"?: N, "seed"?: S}`` -> 201
                                                    ``{"id", "domain", "name", "administrator",
                                                    "import": [{"format", "folder", "created",
                                                    "rejected": [{"file", "line", "reason"}],
                                                    "warnings"}]}``; 400 when ``strict`` and a row
                                                    is rejected; ``"consent": false`` starts it
                                                    without admin consent
  ``GET /_sandbox/tenants/{id}``                    the tenant with its domains, counts, import
  ``GET|PUT /_sandbox/knobs``                       sandbox-wide knobs (PUT merges)
  ``GET|PUT /_sandbox/tenants/{id}/knobs``          one tenant's knobs (override the above)
  ``GET /_sandbox/counters``                        requests per endpoint and status, overall
                                                    and per tenant; notifications delivered,
                                                    failed_attempts, dropped, abandoned,
                                                    lifecycle
  ``DELETE /_sandbox/counters``                     reset the counters
  ``POST /_sandbox/tenants/{id}/expire-delta-tokens``  every delta token issued so far answers
                                                    400 ``syncStateNotFound``
  ``POST /_sandbox/tenants/{id}/delta-gone``        the next delta call with a token answers 410
  ``POST /_sandbox/tenants/{id}/reauthorization-required``  send ``reauthorizationRequired``
                                                    to every lifecycle URL; 202 ``{"sent": n}``
  ``POST /_sandbox/reset``                          knobs back to zero everywhere
  ``GET|POST|DELETE /_sandbox/tenants/{id}/consent``  the apps consented to (``{"consented":
                                                    [names]}``); POST grants, DELETE revokes
                                                    (body ``{"app"?: "skolsynk"|"portal"}``)
  ``PUT|DELETE /_sandbox/tenants/{id}/roles/{template id}/members/{user id or UPN}``
                                                    give or take a directory role
  ``POST /_sandbox/apps/{name}/redirect-uris``      body ``{"uri"}``: register a redirect URI

  Knobs: ``latency_ms`` (added to every Graph call), ``throttle_share`` (share answered 429
  with ``Retry-After: retry_after_seconds``), ``retry_after_seconds`` (default 1),
  ``error_share`` (share answered 500 or 503), ``drop_notification_share`` (share of change
  notifications lost), ``fail_after_requests`` (N > 0: the tenant's next N Graph calls are
  answered, every later one answers 503 until the knob changes; 0 turns it off).

The sandbox keeps tenants in memory; the CA, keys and app credentials persist in the data
directory. ``DIR/sandbox.json`` holds ``authority``, ``graph_url``, ``ca_bundle``,
``client_id``, ``client_secret`` (Skolsynk's app), ``admin_url``, ``admin_token``,
``people_password`` (every person's password), ``apps`` (``skolsynk`` and ``portal``: ``name``,
``client_id``, ``client_secret``, ``redirect_uris``) and ``tenants`` (``id``, ``domain``,
``name``, ``administrator``: the UPN of a Global Administrator). Both apps accept any ``http``
redirect URI on a loopback host besides the registered ones (``--redirect-uri``, admin API).
"""
