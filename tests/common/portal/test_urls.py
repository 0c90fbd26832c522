"""The portal URL policy, case by case, and how spellings of one portal are recognised."""

from __future__ import annotations

import pytest

from common.portal.urls import PortalUrlRefused, check_portal_url, normalise, same_portal

ACCEPTED = [
    ("https://portal.example/scim/v2/lund", "https://portal.example/scim/v2/lund"),
    ("https://Portal.Example:443/scim/v2/lund/", "https://portal.example/scim/v2/lund"),
    ("HTTPS://portal.example//scim/v2/./lund", "https://portal.example/scim/v2/lund"),
    ("https://portal.example:8443/scim", "https://portal.example:8443/scim"),
    ("http://127.0.0.1:8300/scim/v2/skola", "http://127.0.0.1:8300/scim/v2/skola"),
    ("http://localhost:8300/scim/v2/skola", "http://localhost:8300/scim/v2/skola"),
    ("http://[::1]:8300/scim/v2/skola", "http://[::1]:8300/scim/v2/skola"),
    ("http://127.1:80/scim", "http://127.0.0.1/scim"),
    ("https://93.184.216.34/scim", "https://93.184.216.34/scim"),
]

REFUSED = [
    ("http://portal.example/scim/v2/lund", "must use https"),
    ("http://10.0.0.5/scim/v2/lund", "private-network address"),
    ("https://10.0.0.5/scim/v2/lund", "private-network address"),
    ("https://192.168.1.20/scim", "private-network address"),
    ("https://172.16.3.4/scim", "private-network address"),
    ("https://[fd12:3456::1]/scim", "private-network address"),
    ("https://100.64.0.9/scim", "private-network address"),
    ("http://169.254.169.254/latest/meta-data", "cloud metadata service"),
    ("https://169.254.169.254/", "cloud metadata service"),
    ("http://[fd00:ec2::254]/", "cloud metadata service"),
    ("https://0xa9.254.169.254/", "cloud metadata service"),
    ("https://2852039166/", "cloud metadata service"),
    ("https://[::ffff:169.254.169.254]/", "cloud metadata service"),
    ("https://169.254.10.1/scim", "link-local address"),
    ("https://[fe80::1]/scim", "link-local address"),
    ("https://0.0.0.0/scim", "unspecified address"),
    ("https://[::]/scim", "unspecified address"),
    ("https://224.0.0.1/scim", "multicast or reserved"),
    ("https://user:pass@portal.example/scim", "carries credentials"),
    ("https://token@portal.example/scim", "carries credentials"),
    ("https://portal.example/scim\r\nX-Injected: 1", "control characters"),
    ("https://portal.example/sc im", "whitespace"),
    ("https://portal.example/scim\t", "whitespace"),
    ("https://portal.example/scim?token=abc", "query or fragment"),
    ("https://portal.example/scim#frag", "query or fragment"),
    ("ftp://portal.example/scim", "must be an http(s) URL"),
    ("portal.example/scim", "must be an http(s) URL"),
    ("", "must be an http(s) URL"),
    ("https://portal.example:99999/scim", "not a valid URL"),
]


@pytest.mark.parametrize(("url", "normalised"), ACCEPTED)
def test_accepted_urls_come_back_normalised(url: str, normalised: str) -> None:
    assert check_portal_url(url) == normalised


@pytest.mark.parametrize(("url", "problem"), REFUSED)
def test_refused_urls_say_why(url: str, problem: str) -> None:
    with pytest.raises(PortalUrlRefused) as refused:
        check_portal_url(url, what="the test portal")
    assert problem in str(refused.value)
    assert str(refused.value).startswith("The URL of the test portal ")
    assert "\n" not in str(refused.value) and "\r" not in str(refused.value)


@pytest.mark.parametrize(
    "url", ["https://10.0.0.5/scim/v2/lund", "https://[fd12:3456::1]/scim", "http://10.1.2.3/s"]
)
def test_private_addresses_only_when_the_operator_allows_them(url: str) -> None:
    if url.startswith("http:"):
        with pytest.raises(PortalUrlRefused, match="must use https"):
            check_portal_url(url, allow_private=True)
    else:
        assert check_portal_url(url, allow_private=True) == normalise(url)


def test_metadata_and_link_local_stay_refused_when_private_ones_are_allowed() -> None:
    for url in ("https://169.254.169.254/", "http://[fd00:ec2::254]/", "https://169.254.1.1/"):
        with pytest.raises(PortalUrlRefused):
            check_portal_url(url, allow_private=True)


def test_credentials_are_not_repeated_in_the_message() -> None:
    with pytest.raises(PortalUrlRefused) as refused:
        check_portal_url("http://anna:hemligt@10.0.0.5/scim")
    assert "hemligt" not in str(refused.value)


@pytest.mark.parametrize(
    "other",
    [
        "https://portal.example/scim/v2/lund/",
        "https://PORTAL.example/scim/v2/lund",
        "https://portal.example:443/scim/v2/lund",
        "HTTPS://portal.example/scim/v2//lund",
        "https://portal.example/scim/v2/LUND",
    ],
)
def test_spellings_of_one_portal_are_the_same_portal(other: str) -> None:
    assert same_portal("https://portal.example/scim/v2/lund", other)


@pytest.mark.parametrize(
    "other",
    [
        "https://portal.example/scim/v2/malmo",
        "https://portal.example:8443/scim/v2/lund",
        "http://portal.example/scim/v2/lund",
        "https://other.example/scim/v2/lund",
    ],
)
def test_other_portals_are_not_the_same(other: str) -> None:
    assert not same_portal("https://portal.example/scim/v2/lund", other)
