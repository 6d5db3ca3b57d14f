"""Where a build's RUN steps may connect: the package registries this host is configured for.

A build sandbox gets no general internet. It may reach the hosts of the host's own apt sources
(for the template's suite), pip's index and extra indexes (when they are http(s)), and npm's
registry - read from the same configuration the host's tools use, so a machine behind a local
mirror builds from that mirror. Hosts behind a TLS-intercepting egress proxy need the proxy's CA:
the host's locally added CAs (`/usr/local/share/ca-certificates`) are handed to each RUN step
through the environment (SSL_CERT_FILE, PIP_CERT, ...) and never stored in a layer.
"""

from __future__ import annotations

import configparser
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from corral.templates.sources import host_sources

DEFAULT_PIP_HOSTS = ("pypi.org", "files.pythonhosted.org")
DEFAULT_NPM_HOST = "registry.npmjs.org"
PIP_CONFIGS = (Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"), Path.home() / ".config/pip/pip.conf",
               Path.home() / ".pip/pip.conf")
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")


def _host(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        return parts.hostname.lower()
    return None


def apt_hosts(suite: str = "bookworm", apt_dir: Path | None = None) -> list[str]:
    sources = host_sources(suite, apt_dir) if apt_dir else host_sources(suite)
    hosts = [_host(s.uri) for s in sources]
    return [h for h in hosts if h] or ["deb.debian.org"]


def pip_hosts(configs: tuple[Path, ...] = PIP_CONFIGS, environ: dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    urls: list[str] = []
    index_set = False
    for path in configs:
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, OSError):
            continue
        for section in ("global", "install"):
            if parser.has_option(section, "index-url"):
                urls.append(parser.get(section, "index-url"))
                index_set = True
            if parser.has_option(section, "extra-index-url"):
                urls += parser.get(section, "extra-index-url").split()
    if env.get("PIP_INDEX_URL"):
        urls.append(env["PIP_INDEX_URL"])
        index_set = True
    urls += env.get("PIP_EXTRA_INDEX_URL", "").split()
    hosts = [h for h in (_host(u) for u in urls) if h]
    if not index_set:
        hosts += list(DEFAULT_PIP_HOSTS)
    elif "pypi.org" in hosts:
        hosts.append("files.pythonhosted.org")     # PyPI's index links to its file host
    return hosts


def npm_hosts() -> list[str]:
    try:
        out = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True, timeout=20)
        host = _host(out.stdout.strip()) if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        host = None
    return [host or DEFAULT_NPM_HOST]


def registry_hosts(suite: str = "bookworm") -> list[str]:
    seen: list[str] = []
    for host in apt_hosts(suite) + pip_hosts() + npm_hosts():
        if host not in seen:
            seen.append(host)
    return seen


def local_ca_pem(directory: Path = LOCAL_CA_DIR) -> str:
    """The host's locally added CA certificates, concatenated (empty when there are none)."""
    parts = []
    try:
        files = sorted(directory.rglob("*.crt"))
    except OSError:
        return ""
    for path in files:
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            continue
        if "-----BEGIN CERTIFICATE-----" in text:
            parts.append(text.strip() + "\n")
    return "".join(parts)


def host_nameservers(path: Path = Path("/etc/resolv.conf")) -> list[str]:
    servers = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return servers
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and ":" not in fields[1]:
            servers.append(fields[1])
    return servers
