from corral.templates.sources import AptSource, host_sources, render

DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.example/debian
Suites: bookworm
Components: main contrib
Enabled: no
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 abc
"""


def _apt(tmp_path, files):
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_takes_only_the_suite_and_its_updates_and_security(tmp_path):
    apt = _apt(tmp_path, {
        "sources.list.d/debian.sources": DEBIAN_SOURCES,
        "sources.list.d/google.list": "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n",
        "sources.list.d/nodesource.sources": "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n",
        "sources.list.d/old.list.disabled": "deb http://deb.debian.org/debian bookworm main\n",
    })
    found = host_sources("bookworm", apt)
    assert [(s.uri, s.suite) for s in found] == [
        ("http://deb.debian.org/debian", "bookworm"),
        ("http://deb.debian.org/debian", "bookworm-updates"),
        ("http://deb.debian.org/debian-security", "bookworm-security"),
    ]
    assert all(s.signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg" for s in found)


def test_one_line_format_with_options_comments_and_duplicates(tmp_path):
    apt = _apt(tmp_path, {"sources.list": (
        "# comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.local/debian bookworm main contrib # trailing\n"
        "deb http://mirror.local/debian bookworm main contrib\n"
        "deb http://mirror.local/debian bookworm main contrib\n"
        "deb-src http://mirror.local/debian bookworm main\n"
        "deb http://mirror.local/debian trixie main\n"
        "deb http://broken\n"
    )})
    found = host_sources("bookworm", apt)
    assert found == [
        AptSource("http://mirror.local/debian", "bookworm", ("main", "contrib"), "/k.gpg"),
        AptSource("http://mirror.local/debian", "bookworm", ("main", "contrib"), None),
    ]
    assert render(found).splitlines() == [
        "deb [signed-by=/k.gpg] http://mirror.local/debian bookworm main contrib",
        "deb http://mirror.local/debian bookworm main contrib",
    ]


def test_inline_keys_are_dropped_not_mangled(tmp_path):
    text = DEBIAN_SOURCES.replace("Enabled: no\n", "")
    apt = _apt(tmp_path, {"sources.list.d/x.sources": text})
    mirror = [s for s in host_sources("bookworm", apt) if "mirror.example" in s.uri]
    assert mirror == [AptSource("http://mirror.example/debian", "bookworm", ("main", "contrib"), None)]


def test_no_apt_configuration_means_no_sources(tmp_path):
    assert host_sources("bookworm", tmp_path) == []
