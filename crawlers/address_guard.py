"""Downloader middleware: fetch only public internet addresses (no SSRF through feeds or redirects).

Every request goes through :class:`PublicAddressMiddleware` before it is downloaded: the first
request of a spider, each redirect (Scrapy's ``RedirectMiddleware`` sends the new request back
through the whole middleware chain), robots.txt requests, and Mastodon's next pages. It refuses

* any scheme other than ``http`` and ``https`` (``file://``, ``s3://``, ``data:``...);
* a host that is, or resolves to, a loopback, link-local (the cloud metadata endpoint
  ``169.254.169.254``), private, multicast, reserved or unspecified address,

unless the place is in ``FRESHLM_CRAWL_ALLOW_PRIVATE`` (Scrapy setting of the same name;
default: the sandbox world's ``host:port``). A refused request fails with
:class:`AddressRefused` naming the URL, the address and why; the spider counts it as
``errors/address_refused``.

The host is resolved through the crawler's own caching resolver (``reactor.resolve``, Scrapy's
``CachingThreadedResolver``), which the download's connection then reads from its cache: the
address checked here is the address connected to, so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot slip past.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request
from scrapy.utils.defer import maybe_deferred_to_future

from freshlm.addresses import AllowList, IPAddress, refusal

SETTING = "FRESHLM_CRAWL_ALLOW_PRIVATE"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(IgnoreRequest):
    """A request to a non-public address or a non-http(s) URL; the message says which and why."""


class PublicAddressMiddleware:
    """Refuse requests to non-public addresses; see the module docstring."""

    def __init__(self, allow: AllowList) -> None:
        self.allow = allow

    @classmethod
    def from_crawler(cls, crawler: Any) -> PublicAddressMiddleware:
        raw = crawler.settings.get(SETTING) or ""
        try:
            allow = AllowList.parse("" if str(raw).lower() == "none" else str(raw))
        except ValueError as exc:
            raise ValueError(f"setting {SETTING}={raw!r} is invalid: expected {exc}") from None
        return cls(allow)

    async def process_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in _DEFAULT_PORTS:
            raise AddressRefused(f"refused {request.url}: only http and https URLs are fetched")
        host = parts.hostname or ""
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise AddressRefused(f"refused {request.url}: the port is not a number") from None
        if self.allow.allows(host, None, port):
            return None
        address = await _resolve(host)
        why = refusal(address)
        if why is None or self.allow.allows(host, address, port):
            return None
        named = f"{host} resolves to {address}," if str(address) != host else f"{address} is"
        raise AddressRefused(f"refused {request.url}: {named} a {why} address, not in {SETTING}")


async def _resolve(host: str) -> IPAddress:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    from twisted.internet import reactor

    # DNSLookupError propagates: the spider's errback counts it as a DNS failure.
    resolved = await maybe_deferred_to_future(reactor.resolve(host))
    return ipaddress.ip_address(resolved)
