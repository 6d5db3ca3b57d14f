import socket
import subprocess

import httpx
import pytest

from corral.bench.floor import BareHttpServer, measure_http, measure_spawn


def test_spawn_floor_counts_every_iteration() -> None:
    ticks: list[int] = []
    s = measure_spawn(4, warmup=1, tick=lambda: ticks.append(1))
    assert s.n == 4 and len(ticks) == 4
    assert 0 < s.min_ms <= s.p50_ms <= s.p95_ms <= s.max_ms


def test_spawn_floor_refuses_a_failing_program() -> None:
    with pytest.raises(subprocess.CalledProcessError):
        measure_spawn(1, warmup=0, program="/bin/false")


def test_bare_server_answers_keepalive_requests_and_closes_its_port() -> None:
    with BareHttpServer() as srv:
        port = srv.port
        with httpx.Client() as client:
            for _ in range(3):
                r = client.get(srv.url)
                assert r.status_code == 200 and r.text == "ok"
            r = client.post(srv.url + "anything", content=b"x" * 100_000)
            assert r.status_code == 200
        s = measure_http("bare", srv.url, 3, warmup=1)
        assert s.n == 3
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))


def test_bare_server_survives_garbage_and_half_closed_clients() -> None:
    with BareHttpServer() as srv:
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(b"\x00\x01 not http\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(100) == b""  # dropped, not answered
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.shutdown(socket.SHUT_WR)
        assert httpx.get(srv.url).status_code == 200


def test_http_floor_fails_when_the_server_is_gone() -> None:
    with BareHttpServer() as srv:
        url = srv.url
    with pytest.raises(httpx.HTTPError):
        measure_http("gone", url, 1, warmup=0)
