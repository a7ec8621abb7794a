"""The SSRF guard of outgoing webhooks: only public addresses, unless a setting allows private ones.

A webhook URL comes from a configuration file; whoever can edit it must not
be able to make the notifier talk to the control room's own internal
services (a database on 10.x, a cloud metadata endpoint on 169.254.169.254,
an admin port on 127.0.0.1).  :func:`check_url` resolves the host and
checks **every** address it resolves to: one non-public address refuses the
URL.  "Public" is :attr:`ipaddress.IPv4Address.is_global` (which excludes
RFC 1918 private ranges, loopback, link-local, 100.64.0.0/10 shared space,
reserved and documentation ranges) and not multicast; IPv4-mapped IPv6
addresses (``::ffff:10.0.0.1``) are judged by their IPv4 address.

>>> check_url("http://127.0.0.1:8080/hook")
Traceback (most recent call last):
...
alerts.notify.errors.AddressRefused: webhook address 127.0.0.1 is loopback (set LIFEWATCH_WEBHOOK_ALLOW_PRIVATE=1 to allow)
>>> check_url("http://[::ffff:169.254.169.254]/latest/meta-data")
Traceback (most recent call last):
...
alerts.notify.errors.AddressRefused: webhook address ::ffff:a9fe:a9fe (169.254.169.254) is link-local (set LIFEWATCH_WEBHOOK_ALLOW_PRIVATE=1 to allow)
>>> check_url("http://10.1.2.3/hook", allow_private=True)
['10.1.2.3']

Limits (said honestly): the check runs before every request, but httpx
resolves the name again when it connects, so a DNS server that answers
differently within that moment (DNS rebinding) is not caught.  Redirects
are never followed (a redirect is a permanent failure), so a public URL
cannot bounce the request inward.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from alerts.notify.errors import AddressRefused, ConfigError, Transient

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def classify(addr: IPAddress) -> str | None:
    """Why an address is not public (``None``: it is)."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for name in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(addr, "is_" + name):
            return name.replace("_", "-")
    if not addr.is_global:
        return "not globally routable"
    return None


def parse_url(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; anything else is a configuration error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"webhook URL must be http or https: {redact(url)}")
    if not parts.hostname:
        raise ConfigError(f"webhook URL has no host: {redact(url)}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ConfigError(f"webhook URL has a bad port: {redact(url)}") from exc
    return parts.hostname, port


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def check_url(url: str, allow_private: bool = False) -> list[str]:
    """Resolve the URL's host; return its addresses, or raise :class:`AddressRefused` if one is not public.

    A name that does not resolve raises :class:`~alerts.notify.errors.Transient` (DNS may come back).
    """
    host, port = parse_url(url)
    literal = literal_address(host)
    if literal is not None:
        addrs = [str(literal)]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Transient(f"cannot resolve webhook host {host!r}: {exc}") from None
        addrs = sorted({str(info[4][0]).split("%")[0] for info in infos})
    if not allow_private:
        for a in addrs:
            ip = ipaddress.ip_address(a)
            why = classify(ip)
            if why is not None:
                mapped = getattr(ip, "ipv4_mapped", None)
                shown = f"{a} ({mapped})" if mapped is not None else a
                raise AddressRefused(f"webhook address {shown} is {why} (set LIFEWATCH_WEBHOOK_ALLOW_PRIVATE=1 to allow)")
    return addrs


def redact(url: str) -> str:
    """A URL fit for logs: scheme, host, port and path; no credentials, no query (access tokens live there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}" + ("?…" if parts.query else "")
