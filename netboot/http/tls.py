"""The HTTPS certificate: the configured one, or one generated on first start.

With `http.tls_cert`/`tls_key` unset, a self-signed RSA-2048 certificate (RSA,
not ECDSA: older phone TLS stacks know only RSA) is generated with the
`cryptography` package under `state_dir/tls/`, valid 10 years, for the
appliance's name and address, and reused on later starts. The key file is
mode 0600.

Why `cryptography` and not the `openssl` command: it is the PyCA library every
Python TLS tool builds on, ships as a wheel with its own OpenSSL (no dependency
on an `openssl` binary being on PATH, nor on its version's flags such as
`-addext`), and gives a typed API instead of a subprocess whose output must be
parsed. It is imported only when a certificate has to be generated.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import ssl
import warnings
from pathlib import Path

from netboot.config import Config

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"


def certificate_paths(config: Config) -> tuple[Path, Path]:
    """(cert, key) to use, generating them under state_dir if none are configured."""
    http = config.http
    if http.tls_cert is not None and http.tls_key is not None:
        return http.tls_cert, http.tls_key
    directory = config.appliance.state_dir / "tls"
    cert, key = directory / CERT_NAME, directory / KEY_NAME
    if not (cert.exists() and key.exists()):
        try:
            generate(cert, key, config.appliance.name, config.appliance.address)
        except OSError as exc:
            for partial in (cert, key):  # never leave half a pair for the next start
                with contextlib.suppress(OSError):
                    partial.unlink()
            raise CertificateWriteError(
                exc.errno, f"cannot write the generated certificate to {directory}: {exc.strerror}"
            ) from None
    return cert, key


class CertificateWriteError(OSError):
    """The self-signed certificate could not be written under state_dir."""


def generate(
    cert_path: Path, key_path: Path, name: str, address: ipaddress.IPv4Address | None
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name or "netboot")])
    alt: list[x509.GeneralName] = [x509.DNSName(name or "netboot")]
    if address is not None:
        alt.append(x509.IPAddress(address))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def server_context(config: Config) -> ssl.SSLContext:
    cert, key = certificate_paths(config)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # Phones in the field still speak TLS 1.0/1.1; the default floor would lock them out.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    try:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        context.set_ciphers("DEFAULT")
    context.load_cert_chain(cert, key)
    return context


def check(config: Config) -> list[str]:
    """`netboot check`: a configured certificate and key must load together."""
    http = config.http
    if not (http.enabled and http.https_port) or http.tls_cert is None or http.tls_key is None:
        return []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(http.tls_cert, http.tls_key)
    except (OSError, ValueError) as exc:
        return [f"http.tls_cert/tls_key: cannot load {http.tls_cert} with {http.tls_key}: {exc}"]
    return []
