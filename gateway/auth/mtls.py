"""Certificate-bound access tokens (RFC 8705) behind a TLS terminator.

The gateway does not terminate TLS itself. A terminator (load balancer, ingress, reverse proxy)
verifies the client's certificate and passes it in a header (RFC 9440 `Client-Cert: :<base64 DER>:`,
or a URL-escaped PEM as nginx's `$ssl_client_escaped_cert`). That header is believed only when the
request's TCP peer is one of the configured terminators: from anywhere else it is ignored (and logged),
because any client can send any header. The terminator must also drop the header when a client sends it.

A bound token carries `cnf: {"x5t#S256": <base64url SHA-256 of the DER certificate>}`; the resource
API accepts it only with the same certificate.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Mapping
from urllib.parse import unquote

import structlog
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

log = structlog.get_logger("gateway.auth")


def certificate_thumbprint(der: bytes) -> str:
    """Return the x5t#S256 of a DER certificate: base64url (unpadded) SHA-256."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def parse_certificate(value: str) -> bytes | None:
    """Return the DER bytes of a certificate header value, or None when it holds no certificate."""
    value = value.strip()
    try:
        if value.startswith(":") and value.endswith(":") and len(value) > 2:
            der = base64.b64decode(value[1:-1], validate=True)
            x509.load_der_x509_certificate(der)
            return der
        pem = unquote(value) if "%" in value else value
        if pem.startswith("-----BEGIN CERTIFICATE-----"):
            return x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    except ValueError:
        return None
    return None


class CertificateSource:
    """Finds the client certificate a trusted TLS terminator passed with a request."""

    def __init__(self, header: str | None, trusted_proxies: tuple[str, ...]) -> None:
        self.header = header.lower() if header else None
        self._trusted = tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)

    @property
    def enabled(self) -> bool:
        """Return whether a terminator is configured to pass client certificates."""
        return self.header is not None and bool(self._trusted)

    def _trusted_peer(self, peer: str | None) -> bool:
        if peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def thumbprint(self, peer: str | None, headers: Mapping[str, str]) -> str | None:
        """Return the x5t#S256 of the certificate the terminator passed, or None."""
        if self.header is None:
            return None
        value = headers.get(self.header)
        if value is None:
            return None
        if not self._trusted_peer(peer):
            log.warning("auth.mtls.untrusted_certificate_header", header=self.header, peer=peer)
            return None
        der = parse_certificate(value)
        if der is None:
            log.warning("auth.mtls.unreadable_certificate", header=self.header)
            return None
        return certificate_thumbprint(der)
