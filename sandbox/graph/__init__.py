"""A stand-in for Microsoft Graph and Entra sign-in for school tenants fed by School Data Sync.

Run it with ``skolsynk sandbox graph`` (see ``cli``). It serves, over HTTPS with its own CA:

- sign-in per tenant: ``/{tenant}/v2.0/.well-known/openid-configuration``,
  ``/{tenant}/discovery/v2.0/keys``, ``POST /{tenant}/oauth2/v2.0/token`` (client credentials,
  scope ``https://graph.microsoft.com/.default``);
- Graph v1.0 under ``/v1.0``: users, groups, members, owners, delta, education, the recycle
  bin, subscriptions and ``$batch`` (see ``app`` for the full list);
- the admin API under ``/_sandbox``, every call with ``Authorization: Bearer <admin_token>``:

  ``GET /_sandbox``                                 URLs and tenants
  ``GET /_sandbox/tenants``                         ``{"tenants": [{"id", "domain", "name"}]}``
  ``POST /_sandbox/tenants``                        body ``{"name"?, "load"?: [{"format":
                                                    "sds-classic"|"sds-uk"|"sds-v2"|"sds-v2.1",
                                                    "path": ...}], "strict"?: bool,
                                                    "generate"?: N, "seed"?: S}`` -> 201
                                                    ``{"id", "domain", "name", "import": [{
                                                    "format", "folder", "created", "rejected":
                                                    [{"file", "line", "reason"}], "warnings"}]}``;
                                                    400 when ``strict`` and a row is rejected
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

  Knobs: ``latency_ms`` (added to every Graph call), ``throttle_share`` (share answered 429
  with ``Retry-After: retry_after_seconds``), ``retry_after_seconds`` (default 1),
  ``error_share`` (share answered 500 or 503), ``drop_notification_share`` (share of change
  notifications lost), ``fail_after_requests`` (N > 0: the tenant's next N Graph calls are
  answered, every later one answers 503 until the knob changes; 0 turns it off).

The sandbox keeps tenants in memory; the CA, keys and app credentials persist in the data
directory. ``DIR/sandbox.json`` holds ``authority``, ``graph_url``, ``ca_bundle``,
``client_id``, ``client_secret``, ``admin_url``, ``admin_token`` and ``tenants``.
"""
