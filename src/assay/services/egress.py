"""Where the server's own model calls may go: the egress policy, and an httpx transport that
enforces it on every request, redirects included.

By default a call may reach the known provider hosts only, and only at public addresses. An
administrator widens that with ASSAY_EGRESS_ALLOW (host names, ``*.domain``, IP addresses and
CIDR ranges): a listed host name may resolve anywhere, any other address must be public or
inside a listed range. Loopback (127.0.0.1), link-local (169.254.169.254, the cloud metadata
service) and private ranges are thus refused unless listed. The check happens after DNS
resolution, and the connection goes to the very address that was checked (so a name cannot
resolve to a public address for the check and to a private one for the connection).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import httpx

from assay.errors import UserError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)

#: Hosts of the providers a connection may name without an administrator's say.
KNOWN_PROVIDER_HOSTS = frozenset(
    {
        "api.openai.com",
        "api.anthropic.com",
        "api.mistral.ai",
        "generativelanguage.googleapis.com",
        "api.groq.com",
        "api.together.xyz",
        "api.fireworks.ai",
        "api.deepseek.com",
        "openrouter.ai",
    }
)


class EgressRefused(UserError):
    """A model call (or a connection's base URL) points where the egress policy forbids."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise EgressRefused(f"cannot resolve {host!r}: {error.strerror}") from None
    return list(dict.fromkeys(str(item[4][0]) for item in found))


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class EgressPolicy:
    #: Host names allowed besides the known providers (lowercase; ``*.x`` matches under x).
    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    resolve: Resolver = field(default=system_resolver, compare=False)
    #: Whether a host name need not be a known provider's or listed (agent endpoints): its
    #: addresses are checked all the same.
    any_host: bool = False
    #: What the calls are, for the refusals' messages.
    what: str = "model calls"

    @classmethod
    def from_setting(cls, text: str, resolve: Resolver = system_resolver) -> EgressPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in text.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks), resolve)

    def for_agents(self, *, loopback: bool) -> EgressPolicy:
        """The policy for calls to registered agent endpoints (see the module)."""
        networks = self.networks + (LOOPBACK_NETWORKS if loopback else ())
        return replace(self, networks=networks, any_host=True, what="calls to agents")

    # --- the rules ---------------------------------------------------------------------

    def _listed_host(self, host: str) -> bool:
        return host in self.hosts or any(
            pattern.startswith("*.") and host.endswith(pattern[1:]) for pattern in self.hosts
        )

    def _address_allowed(self, address: IPAddress) -> bool:
        if any(address in network for network in self.networks):
            return True
        return address.is_global and not address.is_multicast

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses a call to ``host`` may connect to; :class:`EgressRefused` if none."""
        host = host.lower().rstrip(".")
        literal = _ip(host)
        if literal is not None:
            if any(literal in network for network in self.networks):
                return [str(literal)]
            if self.any_host and self._address_allowed(literal):
                return [str(literal)]
            raise EgressRefused(
                f"{self.what} to {host} are not allowed: an address must be a known provider's "
                "host, or be allowed by an administrator in ASSAY_EGRESS_ALLOW"
            )
        listed = self._listed_host(host)
        if not listed and host not in KNOWN_PROVIDER_HOSTS and not self.any_host:
            raise EgressRefused(
                f"{self.what} to {host!r} are not allowed: it is not a known provider host "
                f"({', '.join(sorted(KNOWN_PROVIDER_HOSTS)[:3])}, ...); an administrator can "
                "allow it with ASSAY_EGRESS_ALLOW"
            )
        found = self.resolve(host, port)
        if listed:
            return found
        for text in found:
            address = _ip(text)
            if address is None or not self._address_allowed(address):
                raise EgressRefused(
                    f"{host!r} resolves to {text}, a loopback, private or link-local address; "
                    f"{self.what} there are refused unless ASSAY_EGRESS_ALLOW lists it"
                )
        return found

    def check_url(self, url: str) -> None:
        """Refuse a base URL the policy forbids (saving a connection); a name that does not
        resolve now is left to the check at call time."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EgressRefused(f"base URL {url!r} must be an http:// or https:// URL with a host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            self.addresses(parts.hostname, port)
        except EgressRefused as refused:
            if "cannot resolve" in str(refused):
                return
            raise


class EgressTransport(httpx.BaseTransport):
    """An httpx transport that checks each request (each redirect hop is one) against the
    policy and connects to the checked address, keeping the Host header and TLS name."""

    def __init__(self, policy: EgressPolicy, inner: httpx.BaseTransport | None = None) -> None:
        self.policy = policy
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        address = self.policy.addresses(host, port)[0]
        if _ip(host) is None:
            request.url = url.copy_with(host=address)
            if url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def guarded_client(policy: EgressPolicy, timeout: float = 60.0) -> httpx.Client:
    """An HTTP client for the providers' SDKs whose every request passes the policy."""
    return httpx.Client(transport=EgressTransport(policy), timeout=timeout, follow_redirects=True)


def policy_hosts(policy: EgressPolicy) -> Iterable[str]:
    return sorted(KNOWN_PROVIDER_HOSTS | policy.hosts)
