"""The decisions of the web server's Host and cross-origin guards
(:mod:`ekspresi.web.middleware`), case by case and without a server: the cases a browser
or HTTP client cannot easily send (no Host header, an empty host part, ``Origin: null``
without a Host). The served behaviour is in test_web_hardening.py."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from ekspresi.web.middleware import CrossOriginGuard, HostCheckMiddleware, host_name, same_origin


@pytest.mark.parametrize("header, name", [
    ("Example.COM:8000", "example.com"),
    ("localhost.", "localhost"),              # the root-zone dot names the same host
    (" 127.0.0.1 ", "127.0.0.1"),
    ("[::1]:8000", "::1"),
    ("[FE80::1]", "fe80::1"),
    ("", None),                               # malformed: no host part at all
    (":8000", None),
    (".", None),
    ("bad[host", None),
    ("a:b:c", None),
])
def test_host_name_of_a_host_header(header, name):
    assert host_name(header) == name


def test_host_check_decides_by_name_and_ip_literal():
    names = frozenset({"localhost", "fer.lan"})
    guard = HostCheckMiddleware(None, names)
    assert guard.allowed(None)                # HTTP/1.0 without Host: not a browser
    assert guard.allowed("FER.lan:8000") and guard.allowed("localhost.")
    assert not guard.allowed("evil.example") and not guard.allowed("10.0.0.7")
    assert not guard.allowed(":8000")         # no host part: refused, not matched
    on_ip = HostCheckMiddleware(None, names, accept_ip=True)
    assert on_ip.allowed("10.0.0.7:8000") and on_ip.allowed("[fe80::1]:80")
    assert not on_ip.allowed("evil.example")
    off = HostCheckMiddleware(None, None)     # --allowed-host '*'
    assert off.allowed("evil.example") and off.allowed(None)


def test_same_origin_needs_a_host_to_compare_with():
    assert same_origin("http://Testserver:8000", "testserver:8000")
    assert not same_origin("http://testserver:8001", "testserver:8000")
    for host in (None, ""):
        assert not same_origin("null", host)          # an opaque origin has no netloc
        assert not same_origin("http://testserver", host)


@pytest.mark.parametrize("headers, ok", [
    ({}, True),
    ({"host": "testserver", "origin": "http://testserver"}, True),
    ({"origin": "null"}, False),                       # no Host to compare it with
    ({"host": "testserver", "origin": "http://evil.example"}, False),
    ({"host": "testserver", "sec-fetch-site": "Same-Origin"}, True),
    ({"host": "testserver", "sec-fetch-site": "NONE"}, True),
    ({"host": "testserver", "sec-fetch-site": "same-site"}, False),
    ({"host": "testserver", "origin": "http://app.example", "sec-fetch-site": "cross-site"},
     True),                                            # --cors-origin
    ({"host": "testserver", "origin": "http://app.example.evil", "sec-fetch-site":
      "cross-site"}, False),
])
def test_cross_origin_guard_decisions(headers, ok):
    guard = CrossOriginGuard(None, cors_origins=("http://app.example",))
    assert guard.allowed(Headers(headers)) is ok
