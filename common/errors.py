"""The one exception tree of Skolsynk, split by what the caller should do.

::

    SkolsynkError                      base; ``str(exc)`` is a sentence for a person
    ├── ConfigError                    alert a person: fix the environment or settings
    ├── NeedsAttention                 alert a person: retrying will not help
    │   ├── AuthError                  credentials refused (Entra invalid_client, portal 401/403)
    │   │   ├── GraphAuthError
    │   │   └── PortalAuthError
    │   ├── UnknownTenant              no such tenant in the registry
    │   └── TenantDisabled             the tenant is disabled: nothing may be written for it
    ├── AlreadyRunning                 nothing to do: the same work is running elsewhere (exit 0)
    ├── TransientError                 retry later: the same call may succeed
    │   ├── Throttled                  429 after our own retries; ``retry_after`` seconds if known
    │   ├── GraphUnavailable           5xx, timeouts, connection errors from Graph
    │   ├── PortalUnavailable          5xx, timeouts, connection errors from the portal
    │   └── QueueUnavailable           Redis could not be reached
    └── RejectedError                  drop and log: the other side said no to this one request
        ├── GraphRequestError          a 4xx other than 401/403/404/429 from Graph
        ├── PortalRequestError         a 4xx other than 401/403/404/429 from the portal
        ├── ConflictError              portal 409/412 that survived a re-read
        ├── NotFound                   the object does not exist (404)
        └── DeltaExpired               the delta token is no longer valid: start a full round

Foreign exceptions (``requests``, ``redis``, ``msal``) are translated into this tree once, in
the client modules, with ``raise ... from exc``; nothing else catches them.
"""

from __future__ import annotations


class SkolsynkError(Exception):
    """Base of every error Skolsynk raises on purpose."""

    #: a short hint for a person on what to do next, shown after the message
    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(SkolsynkError):
    """The configuration is missing or malformed; ``problems`` lists every one of them."""

    hint = "Set the variables named above (see the configuration reference in the README)."

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"The configuration has {len(self.problems)} problem(s):\n{lines}")


class NeedsAttention(SkolsynkError):
    """A person must act: retrying the same thing will not help."""


class AuthError(NeedsAttention):
    """Credentials were refused."""


class GraphAuthError(AuthError):
    """Entra or Graph refused our application credentials or token."""

    hint = (
        "Check SKOLSYNK_CLIENT_ID and SKOLSYNK_CLIENT_SECRET, and that the school's administrator "
        "has given admin consent to the application."
    )


class PortalAuthError(AuthError):
    """The portal refused the bearer token of this tenant's environment."""

    hint = "Set a valid token with `skolsynk tenant set TENANT --test-token ...` (or production)."


class UnknownTenant(NeedsAttention):
    """No tenant with this id (or name) is registered."""

    hint = "See `skolsynk tenant list`, or register it with `skolsynk tenant add`."


class TenantDisabled(NeedsAttention):
    """The tenant is disabled (``tenant set --disable``): nothing is written to its portal."""


class AlreadyRunning(SkolsynkError):
    """The same work is already running elsewhere (a reconcile of this tenant); this run did
    nothing and that is not a failure."""


class TransientError(SkolsynkError):
    """Retry later: the same call may succeed.

    ``maybe_applied`` is true when a write's answer was lost (5xx, timeout or connection lost
    after sending): the other side may have carried it out, so look before writing again.
    """

    maybe_applied: bool = False


class Throttled(TransientError):
    """The other side answered 429 more often than our retries allow."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GraphUnavailable(TransientError):
    """Graph answered 5xx, timed out or could not be reached."""


class PortalUnavailable(TransientError):
    """The portal answered 5xx, timed out or could not be reached."""


class QueueUnavailable(TransientError):
    """Redis could not be reached."""

    hint = "Check that Redis answers at REDIS_URL."


class RejectedError(SkolsynkError):
    """The other side refused this one request; drop it and log why."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class GraphRequestError(RejectedError):
    """Graph refused a request with a 4xx."""


class PortalRequestError(RejectedError):
    """The portal refused a request with a 4xx."""


class ConflictError(RejectedError):
    """The portal kept answering 409 or 412 after a re-read."""


class NotFound(RejectedError):
    """The object does not exist."""


class DeltaExpired(RejectedError):
    """The delta token expired (400 syncStateNotFound) or delta answered 410: start over."""
