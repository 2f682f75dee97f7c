"""TLS for both listeners of a node and for its calls to peers (`net.use_https`, reference §16).

- `server_context(net)`: the listeners' context from `net.server_crt` / `net.server_key`.
- `client_context(net)`: how a node (and the local-cluster tooling) checks peers: against
  `net.ca_cert` (empty: the system's CAs), or not at all with `net.skip_verify`.
- `make_self_signed(dir)`: a CA and a server certificate for 127.0.0.1/localhost, what
  `ais cluster up --https` and the tests use (blocking: call it before the event loop or in an executor).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass

from ais.config import NetSection


def server_context(net: NetSection) -> ssl.SSLContext | None:
    if not net.use_https:
        return None
    if not net.server_crt or not net.server_key:
        raise ValueError("net.use_https needs net.server_crt and net.server_key (PEM files)")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(net.server_crt, net.server_key)
    return ctx


def client_context(net: NetSection) -> ssl.SSLContext:
    """How a node checks its peers: by `net.ca_cert` and `net.skip_verify` (not AIS_CLIENT_CA)."""
    return user_context(net.ca_cert, net.skip_verify)


def user_context(ca_cert: str | None = None, skip_verify: bool | None = None) -> ssl.SSLContext:
    """How a client (ours, the CLI) checks a cluster's certificate, as the SDK does it: against
    `ca_cert` / AIS_CLIENT_CA, not at all with `skip_verify` / AIS_SKIP_VERIFY_CRT, else the
    system's CAs."""
    if skip_verify is None:
        flag = os.environ.get("AIS_SKIP_VERIFY_CRT", os.environ.get("AIS_SKIP_VERIFY", ""))
        skip_verify = flag.lower() in ("1", "true", "t", "yes")
    if skip_verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ca = ca_cert if ca_cert is not None else os.environ.get("AIS_CLIENT_CA", "")
    return ssl.create_default_context(cafile=os.path.expanduser(ca) if ca else None)


def scheme(net: NetSection) -> str:
    return "https" if net.use_https else "http"


@dataclass(frozen=True)
class SelfSigned:
    ca_cert: str
    server_crt: str
    server_key: str

    @classmethod
    def in_dir(cls, directory: str) -> "SelfSigned":
        """Where `make_self_signed(directory)` keeps them."""
        return cls(os.path.join(directory, "ca.crt"), os.path.join(directory, "server.crt"),
                   os.path.join(directory, "server.key"))


def make_self_signed(directory: str, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                     days: int = 365) -> SelfSigned:
    """A CA (kept only as its certificate) and a server certificate it signs, for `hosts`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(directory, exist_ok=True)
    out = SelfSigned.in_dir(directory)
    if all(os.path.exists(p) for p in (out.ca_cert, out.server_crt, out.server_key)):
        return out
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ais local CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    with open(out.ca_cert, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(out.server_crt, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(out.server_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return out
