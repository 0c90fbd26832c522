"""Portal SCIM base URLs: which ones Skolsynk sends a school's people and a bearer token to, and
how two spellings of one URL are recognised as the same portal organisation.

The policy (``check_portal_url``): ``https`` for every host but loopback; no credentials in the
URL, no query or fragment, no whitespace or control characters; never a link-local, metadata
or unspecified address; private-network addresses only when the operator allows them
(``SKOLSYNK_ALLOW_PRIVATE_PORTALS``). Addresses are judged as the resolver would read them, so
``http://2130706433/`` is loopback and ``https://0xa9.254.169.254/`` the metadata service.

Failure policy: a refused URL raises ``PortalUrlRefused`` (a ``NeedsAttention``) with one
sentence naming the URL's problem; the URL itself is repeated only without credentials.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
from urllib.parse import SplitResult, urlsplit, urlunsplit

from common.errors import NeedsAttention

DEFAULT_PORTS = {"http": 80, "https": 443}
#: cloud metadata services answer on these; never a portal, whatever the operator allows
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2")
)
EXAMPLE = "https://portal.example/scim/v2/ORG"
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f-\x9f\s]")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class PortalUrlRefused(NeedsAttention):
    """A portal URL that Skolsynk will not send a token to."""

    hint = f"Give the portal's SCIM base URL, such as {EXAMPLE}."


def check_portal_url(url: str, *, allow_private: bool = False, what: str = "the portal") -> str:
    """The URL, normalised (``normalise``), when the policy allows it; else ``PortalUrlRefused``."""
    if _UNSAFE_CHARACTERS.search(url):
        raise PortalUrlRefused(f"The URL of {what} contains whitespace or control characters.")
    parts = _split(url, what)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise PortalUrlRefused(
            f"The URL of {what} carries credentials (user:password@); "
            "give the token with --test-token or --production-token instead."
        )
    shown = _without_credentials(parts)
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise PortalUrlRefused(f"The URL of {what} ({shown}) has a query or fragment.")
    host = parts.hostname or ""
    address = _address(host)
    loopback = host == "localhost" or (address is not None and address.is_loopback)
    if address is not None and not loopback:
        problem = _address_problem(address, allow_private=allow_private)
        if problem:
            raise PortalUrlRefused(f"The URL of {what} ({shown}) points at {problem}.")
    if parts.scheme != "https" and not loopback:
        raise PortalUrlRefused(
            f"The URL of {what} ({shown}) must use https: the bearer token would travel "
            "in clear text (http is accepted only for loopback addresses)."
        )
    return normalise(url)


def normalise(url: str) -> str:
    """One spelling per portal URL: lower-case scheme and host, no default port, the path's
    empty, ``.`` and ``..`` segments resolved, no trailing slash."""
    parts = _split(url, "the portal")
    host = (parts.hostname or "").rstrip(".")
    address = _address(host)
    if address is not None:
        host = f"[{address.compressed}]" if address.version == 6 else str(address)
    if parts.port is not None and parts.port != DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    path = re.sub(r"/{2,}", "/", parts.path)
    path = posixpath.normpath(path) if path else ""
    path = "" if path in ("/", ".") else path.rstrip("/")
    return urlunsplit((parts.scheme, host, path, "", ""))


def same_portal(a: str, b: str) -> bool:
    """Whether two URLs name the same portal organisation (compared normalised; the path
    without regard to letter case, since a portal that told them apart would be unusual and
    mistaking one for two is the dangerous direction)."""
    try:
        return normalise(a).casefold() == normalise(b).casefold()
    except PortalUrlRefused:
        return False


def _split(url: str, what: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError:
        raise PortalUrlRefused(f"The URL of {what} is not a valid URL.") from None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        raise PortalUrlRefused(
            f"The URL of {what} must be an http(s) URL with a host, "
            f"such as {EXAMPLE}, not {url.strip()!r}."
            if "@" not in url
            else f"The URL of {what} must be an http(s) URL with a host."
        )
    return parts._replace(scheme=parts.scheme.lower())


def _without_credentials(parts: SplitResult) -> str:
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _address(host: str) -> Address | None:
    """The IP address a host names literally, read as the system resolver reads it (which
    also takes ``127.1``, ``0x7f.0.0.1`` and ``2130706433``); ``None`` for a name."""
    text = host.strip("[]").rstrip(".")
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        if not re.fullmatch(r"[0-9a-fA-FxX.]+", text) or not any(c.isdigit() for c in text):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _address_problem(address: Address, *, allow_private: bool) -> str | None:
    if address in METADATA_ADDRESSES:
        return "a cloud metadata service"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast or address.is_reserved:
        return "a multicast or reserved address"
    private = address.is_private or address in ipaddress.ip_network("100.64.0.0/10")
    if private and not allow_private:
        return (
            "a private-network address (set SKOLSYNK_ALLOW_PRIVATE_PORTALS=yes "
            "if the portal really is on your own network)"
        )
    return None
