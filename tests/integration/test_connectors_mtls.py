"""A brokered source that authenticates the gateway by mTLS (DT&V's case system, simulated over real TLS
on loopback): the connector presents its client certificate; without one the source is unreachable (502)."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.connectors.simulators import SourceSystemSim, dtv_case_system
from gateway.container import build
from tests.conftest import IN_FORCE, Gateway, make_settings
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter


def _cert(
    path: Path, name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, san: bool
) -> tuple[x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if san:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return subject, key


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ca = _cert(tmp_path / "ca", "Synthetic test CA", None, False)
    _cert(tmp_path / "server", "dtv-case-system.test", ca, True)
    _cert(tmp_path / "client", "lvv-gateway.test", ca, False)
    return tmp_path


@pytest.fixture
def dtv(pki: Path) -> Iterator[SourceSystemSim]:
    tls = {
        "ssl_certfile": str(pki / "server.crt"),
        "ssl_keyfile": str(pki / "server.key"),
        "ssl_ca_certs": str(pki / "ca.crt"),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }
    with dtv_case_system(tls=tls) as sim:
        yield sim


@pytest.mark.parametrize("with_client_cert", [True, False])
def test_the_dtv_connector_authenticates_by_its_client_certificate(
    database_url: str, tmp_path: Path, minter: TokenMinter, pki: Path, dtv: SourceSystemSim, with_client_cert: bool
) -> None:
    overrides = {"connector_tls_ca": pki / "ca.crt"}
    if with_client_cert:
        overrides.update(connector_tls_cert=pki / "client.crt", connector_tls_key=pki / "client.key")
    else:  # a certificate the source does not trust: the handshake fails
        _cert(pki / "stranger", "stranger", None, False)
        overrides.update(connector_tls_cert=pki / "stranger.crt", connector_tls_key=pki / "stranger.key")
    settings = make_settings(
        database_url, tmp_path / "keys", minter, connector_urls={"dtv-zaaksysteem": dtv.url}, **overrides
    )
    container = build(settings, FixedClock(IN_FORCE))
    try:
        with LiveServer(create_app(container=container)) as server, httpx.Client(base_url=server.url, timeout=30) as h:
            gw = Gateway(container, FixedClock(IN_FORCE), minter, server.url, h)
            p = gw.register()
            ref = gw.pseudonym_for("dtv", p)
            dtv.state.put(ref, "return_track", {"return_willingness": "considering", "financial_support": "synthetic"})
            response = h.get(f"/v1/participants/{ref}", headers=gw.headers("dtv", "return_officer", "return_support"))
            if with_client_cert:
                assert response.status_code == 200, response.text
                assert response.json()["records"]["return_track"]["fields"]["return_willingness"] == "considering"
                [call] = dtv.state.received
                assert "authorization" not in call.headers  # mTLS: the certificate is the credential
            else:
                assert response.status_code == 502
                assert response.json()["code"] == "source_unreachable"
                assert dtv.state.received == []
    finally:
        container.close()
