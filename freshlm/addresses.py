"""Which network addresses an outbound fetch may reach: public ones, plus an explicit allowlist.

A crawler that follows links and redirects from the internet must not be steered at the
machine's own services (loopback), the cloud's metadata endpoint (link-local
``169.254.169.254``) or the private network behind it. :func:`refusal` says why an address is
not public; :class:`AllowList` names the few non-public places that are fetched on purpose (the
sandbox world on loopback, a test server), as entries of ``FRESHLM_CRAWL_ALLOW_PRIVATE``:

* ``127.0.0.1:8766``, ``[::1]:8766`` — one address and port;
* ``10.1.0.0/16``, ``127.0.0.1`` — every port of an address or network;
* ``world.internal:8766`` — a host name as written in the URL (matched before resolution).
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_ACCEPTS = (
    "comma-separated address[/prefix][:port] or host:port entries, IPv6 in brackets when a port"
    " is given (e.g. 127.0.0.1:8766,[::1]:8766,10.0.0.0/8), or none"
)


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public internet address (``"loopback"``...), or None if it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:
        return "not globally routable"
    return None


class AllowList(tuple):
    """Entries ``(network or host name, port or None)``; ``str()`` gives the setting's syntax."""

    @classmethod
    def parse(cls, raw: str) -> AllowList:
        """Parse the setting's syntax; ValueError saying what it accepts for a bad entry."""
        entries: list[tuple[IPNetwork | str, int | None]] = []
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            entries.append(_parse_entry(item))
        return cls(entries)

    def allows(self, host: str, address: IPAddress | None, port: int) -> bool:
        """Whether a fetch of ``host`` (resolved to ``address``) on ``port`` is allowed."""
        host = host.lower().strip("[]")
        for target, wanted_port in self:
            if wanted_port is not None and wanted_port != port:
                continue
            if isinstance(target, str):
                if target == host:
                    return True
            elif address is not None and address in target:
                return True
        return False

    def __str__(self) -> str:
        parts = []
        for target, port in self:
            text = str(target)
            if isinstance(target, ipaddress.IPv4Network | ipaddress.IPv6Network):
                single = target.num_addresses == 1
                text = str(target.network_address) if single else str(target)
                if port is not None and target.version == 6:
                    text = f"[{text}]"
            parts.append(text if port is None else f"{text}:{port}")
        return ",".join(parts)


def _parse_entry(item: str) -> tuple[IPNetwork | str, int | None]:
    host, port = item, None
    bracketed = re.match(r"^\[([^\]]+)\](?::(\d+))?$", item)
    if bracketed:
        host, port_text = bracketed.group(1), bracketed.group(2)
        port = _port(port_text, item) if port_text else None
    elif item.count(":") == 1:
        host, port_text = item.split(":")
        port = _port(port_text, item)
    try:
        return ipaddress.ip_network(host, strict=False), port
    except ValueError:
        pass
    name = host.lower()
    if not _HOST_RE.match(name) or port is None:
        raise ValueError(f"{_ACCEPTS}; {item!r} is not one (host names need a :port)")
    return name, port


def _port(text: str, item: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{_ACCEPTS}; {item!r} has no valid port (1-65535)")
    return int(text)


def allowlist_setting(raw: str) -> AllowList | None:
    """The ``FRESHLM_CRAWL_ALLOW_PRIVATE`` parser: ``none`` (or empty) allows nothing extra."""
    if raw.strip().lower() in {"", "none"}:
        return None
    return AllowList.parse(raw)
