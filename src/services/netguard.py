"""Keep tools that fetch URLs for a model from reaching the network `oas` runs in.

A model (or whoever wrote the page it read) chooses the URLs web fetch and request-level
MCP servers connect to, so `oas` must not become a way into `localhost:5432`, the cloud
metadata service on 169.254.169.254 or the office LAN. `GuardedTransport` resolves each
request's host itself, refuses any non-public address, and connects to the address it
checked (the original name still goes in the `Host` header and TLS SNI, and the
certificate is verified against it). A second DNS answer (rebinding) therefore never
reaches the socket, and every redirect hop, being a new request, is checked again.

An operator can name hosts (names, IPs or CIDR ranges) that may be private anyway.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# Deprecated IPv6 site-local (RFC 3879): Python calls it neither private nor reserved, but
# networks that still route it use it as a private range.
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")


class BlockedAddress(httpx.TransportError):
    """The URL's host is, or resolves to, an address tools may not reach."""


class UnresolvableHost(httpx.ConnectError):
    """DNS gave no address for the host."""


def is_public(address: IPAddress) -> bool:
    """True for addresses on the public internet; False for private, loopback, link-local,
    multicast, reserved, unspecified, shared (CGNAT) and site-local (`fec0::/10`) ranges,
    also when IPv4 hides inside an IPv6 form (`::ffff:127.0.0.1`, 6to4)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _SITE_LOCAL:
            return False
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None and not is_public(embedded):
            return False
    return bool(
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not address.is_loopback
        and not address.is_link_local
    )


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts may be reached: public addresses, plus whatever the operator allows."""

    allowed_names: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolve_timeout: float = 10.0

    @classmethod
    def from_entries(cls, entries: Iterable[str], resolve_timeout: float = 10.0) -> AddressPolicy:
        """Allow-list entries: host names (`intranet.example`), IPs (`127.0.0.1`) or CIDRs."""
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            entry = entry.strip().lower().strip("[]")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(networks), resolve_timeout)

    def host_allowed(self, host: str) -> bool:
        """The operator named this host (or its literal address): no address check."""
        host = host.lower().strip("[]").rstrip(".")
        if host in self.allowed_names:
            return True
        try:
            return self.address_allowed(ipaddress.ip_address(host))
        except ValueError:
            return False

    def address_allowed(self, address: IPAddress) -> bool:
        return is_public(address) or any(address in net for net in self.allowed_networks)

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to for `host`, after checking every address DNS gave.

        One non-public answer refuses the host: a name that resolves to both a public and
        a private address is an attack, not a misconfiguration.
        """
        bare = host.strip("[]")
        try:
            literal = ipaddress.ip_address(bare)
        except ValueError:
            literal = None
        if literal is not None:
            if not self.address_allowed(literal):
                raise BlockedAddress(f"{host} is not a public address")
            return str(literal)
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(bare, port, type=socket.SOCK_STREAM), self.resolve_timeout
            )
        except (TimeoutError, OSError) as exc:
            raise UnresolvableHost(f"cannot resolve {host}: {exc or type(exc).__name__}") from None
        addresses: list[IPAddress] = []
        for info in infos:
            try:
                addresses.append(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
            except ValueError:
                continue
        if not addresses:
            raise UnresolvableHost(f"cannot resolve {host}")
        for address in addresses:
            if not self.address_allowed(address):
                raise BlockedAddress(f"{host} resolves to a non-public address")
        return str(addresses[0])


@dataclass
class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks, then pins, the address of every request it sends."""

    policy: AddressPolicy
    inner: httpx.AsyncBaseTransport = field(default_factory=httpx.AsyncHTTPTransport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if not self.policy.host_allowed(host):
            port = request.url.port or (443 if request.url.scheme == "https" else 80)
            address = await self.policy.resolve(host, port)
            # Connect to the checked address; Host header and SNI keep the name, so
            # virtual hosting and certificate verification work as for the name. A copy is
            # sent: the client resolves redirects against the original request's URL.
            request = httpx.Request(
                request.method,
                request.url.copy_with(host=address),
                headers=request.headers,
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": host},
            )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def guarded_client(
    policy: AddressPolicy,
    *,
    timeout: httpx.Timeout | float,
    max_redirects: int = 5,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """An httpx client whose every connection (redirects included) passes `policy`.

    Proxies from the environment are ignored: through a proxy, the proxy resolves names
    and the check above would guard nothing.
    """
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, httpx.AsyncHTTPTransport(trust_env=False)),
        timeout=timeout,
        follow_redirects=max_redirects > 0,
        max_redirects=max_redirects,
        headers=headers,
        trust_env=False,
    )
