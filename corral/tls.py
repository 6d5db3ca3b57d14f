"""TLS mode: a local certificate authority and a wildcard certificate for the sandbox domain.

With `corral serve --tls` the SDK needs none of its deprecated variables: `E2B_DOMAIN` names the
server (`https://api.{domain}` for the REST API, `https://{port}-{id}.{domain}` for sandboxes) and
`SSL_CERT_FILE` makes it trust our CA. A wildcard under `localhost` itself is refused by the SDK's
TLS stack, so the default domain is `e2b.localhost`, which the SDK resolves to 127.0.0.1 without
any DNS set-up. Keys are made with the openssl command line tool and kept 0600 in the data dir;
the CA is reused across restarts so clients keep trusting the server.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DOMAIN = "e2b.localhost"


class TlsError(RuntimeError):
    pass


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    try:
        subprocess.run(["openssl", *args], check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise TlsError("openssl is not installed (make deps installs it)") from None
    except subprocess.CalledProcessError as exc:
        raise TlsError(f"openssl {args[0]} failed: {exc.stderr.strip()[-300:]}") from None


def ensure_certificates(directory: Path, domain: str) -> TlsFiles:
    """The CA (made once) and a server certificate for `domain` and `*.domain` (remade when the
    domain changes)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca_key = directory / "ca.key"
    if not files.ca_cert.exists() or not ca_key.exists():
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", str(ca_key), "-out", str(files.ca_cert), "-days", "3650",
                 "-subj", "/CN=corral local CA", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    stamp = directory / "server.domain"
    if files.cert.exists() and files.key.exists() and stamp.exists() and stamp.read_text() == domain:
        return files
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        csr, ext = Path(tmp) / "server.csr", Path(tmp) / "server.ext"
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            f"subjectAltName=DNS:{domain},DNS:*.{domain},DNS:localhost,IP:127.0.0.1\n"
        )
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", str(files.key), "-out", str(csr), "-subj", f"/CN={domain}")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(files.ca_cert), "-CAkey", str(ca_key),
                 "-CAcreateserial", "-out", str(files.cert), "-days", "825", "-extfile", str(ext))
    for key in (ca_key, files.key):
        os.chmod(key, 0o600)
    stamp.write_text(domain)
    return files
