"""process.Process over a real daemon: Start/Connect streams, input, signals, PTY, lifetime."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from tests.envd.helpers import Daemon, StreamReader, basic, envelope, start_msg, stream, unary

pytestmark = pytest.mark.root


async def test_start_streams_start_data_end_and_end_of_stream(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Start", start_msg("echo hi; echo oops >&2"))
    assert r.status == 200 and r.content_type == "application/connect+json"
    assert "start" in r.events[0] and r.events[0]["start"]["pid"] > 0
    assert r.output("stdout") == b"hi\n"
    assert r.output("stderr") == b"oops\n"
    assert r.end_event == {"exitCode": 0, "exited": True, "status": "exit status 0"}
    assert r.end == {}


async def test_nonzero_exit_and_signal_death_are_described_like_envd(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Start", start_msg("exit 7"))
        assert r.end_event["exitCode"] == 7 and r.end_event["status"] == "exit status 7"
        assert r.end_event["error"] == "exit status 7"
        r = await stream(c, "process.Process/Start", start_msg("kill -KILL $$"))
    assert r.end_event["exited"] is False
    assert r.end_event["status"] == "signal: killed" and r.end_event["exitCode"] == -1


async def test_runs_as_default_user_with_envd_environment(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Start", {
            "process": {"cmd": "/bin/sh", "args": ["-c", "id -u; id -g; id -G; pwd; echo $HOME $USER $LOGNAME; "
                                                            "echo $SANDBOX_VAR $REQ; echo $PATH"],
                        "envs": {"REQ": "req-value", "SANDBOX_VAR": "overridden"}}, "stdin": False})
    lines = r.output().decode().splitlines()
    assert lines[0] == "1000" and lines[1] == "1000"
    assert set(lines[2].split()) == {"1000", "2000"}  # supplementary group from /etc/group
    assert lines[3] == str(daemon.sandbox.user_home)
    assert lines[4] == f"{daemon.sandbox.user_home} user user"
    assert lines[5] == "overridden req-value"  # request envs win over the sandbox's
    assert "/usr/bin" in lines[6]


async def test_basic_auth_selects_user_and_unknown_user_is_unauthenticated(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Start", start_msg("id -u; pwd"), authorization=basic("root"))
        assert r.output().decode().split() == ["0", str(daemon.sandbox.root_home)]
        r = await stream(c, "process.Process/Start", start_msg("id -u"), authorization=basic("nobody-here"))
    assert r.end is not None and r.end["error"]["code"] == "unauthenticated"
    assert "invalid username" in r.end["error"]["message"]
    assert r.events == []


async def test_cwd_is_honoured_and_a_missing_cwd_is_a_clear_error(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Start", start_msg("pwd") | {"process": {"cmd": "pwd", "cwd": "/tmp"}})
        assert r.output() == b"/tmp\n"
        r = await stream(c, "process.Process/Start", {"process": {"cmd": "pwd", "cwd": "/does/not/exist"}})
    assert r.end["error"]["code"] == "invalid_argument"
    assert "/does/not/exist" in r.end["error"]["message"]


async def test_missing_executable_is_an_error_not_a_hang(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Start", {"process": {"cmd": "/no/such/binary"}})
    assert r.end["error"]["code"] == "invalid_argument"


async def test_stdin_false_means_dev_null(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Start", start_msg("cat; echo done", stdin=False))
    assert r.output() == b"done\n"


async def test_send_input_close_stdin_and_list(daemon: Daemon) -> None:
    async with daemon.client() as c:
        async with c.stream("POST", "/process.Process/Start",
                            content=envelope(start_msg("cat; echo eof", stdin=True, tag="catter")),
                            headers={"content-type": "application/connect+json"}) as resp:
            reader = StreamReader(resp)
            pid = (await reader.next_event())["start"]["pid"]
            listed = (await unary(c, "process.Process/List", {})).json()["processes"]
            mine = [p for p in listed if p["pid"] == pid]
            assert mine and mine[0]["tag"] == "catter" and mine[0]["config"]["cmd"] == "/bin/bash"
            r = await unary(c, "process.Process/SendInput",
                            {"process": {"pid": pid}, "input": {"stdin": base64.b64encode(b"abc\n").decode().rstrip("=")}})
            assert r.status_code == 200 and r.json() == {}
            assert base64.b64decode((await reader.next_event())["data"]["stdout"]) == b"abc\n"
            # select by tag this time
            assert (await unary(c, "process.Process/CloseStdin", {"process": {"tag": "catter"}})).status_code == 200
            events = []
            while True:
                flags, body = await reader.next()
                if flags == 2:
                    assert body == {}
                    break
                events.append(body["event"])
        assert base64.b64decode(events[0]["data"]["stdout"]) == b"eof\n"
        assert events[-1]["end"]["exitCode"] == 0
        listed = (await unary(c, "process.Process/List", {})).json()["processes"]
        assert pid not in [p["pid"] for p in listed]


async def test_stream_input_client_stream(daemon: Daemon) -> None:
    async with daemon.client() as c:
        async with c.stream("POST", "/process.Process/Start", content=envelope(start_msg("head -c 6; echo", stdin=True)),
                            headers={"content-type": "application/connect+json"}) as resp:
            reader = StreamReader(resp)
            pid = (await reader.next_event())["start"]["pid"]
            body = (envelope({"start": {"process": {"pid": str(pid)}}})  # int as string is accepted
                    + envelope({"data": {"input": {"stdin": base64.b64encode(b"abc").decode()}}})
                    + envelope({"keepalive": {}})
                    + envelope({"data": {"input": {"stdin": base64.b64encode(b"def").decode()}}}))
            r = await c.post("/process.Process/StreamInput", content=body,
                             headers={"content-type": "application/connect+json"})
            assert r.status_code == 200
            assert r.content == envelope(b"{}") + envelope(b"{}", 2)
            out = b""
            while True:
                flags, msg = await reader.next()
                if flags == 2:
                    break
                if "data" in msg["event"]:
                    out += base64.b64decode(msg["event"]["data"]["stdout"])
        assert out == b"abcdef\n"


async def test_stream_input_for_unknown_pid_ends_with_not_found(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await c.post("/process.Process/StreamInput", content=envelope({"start": {"process": {"pid": 999999}}}),
                         headers={"content-type": "application/connect+json"})
    assert r.status_code == 200
    (flags, body), = [(r.content[0], r.content[5:])]
    assert flags == 2 and b"not_found" in body


async def test_connect_gives_several_subscribers_the_same_events(daemon: Daemon) -> None:
    async with daemon.client() as c:
        async with c.stream("POST", "/process.Process/Start", content=envelope(start_msg("read x; echo got $x", stdin=True)),
                            headers={"content-type": "application/connect+json"}) as resp:
            starter = StreamReader(resp)
            pid = (await starter.next_event())["start"]["pid"]
            async with c.stream("POST", "/process.Process/Connect", content=envelope({"process": {"pid": pid}}),
                                headers={"content-type": "application/connect+json"}) as resp2:
                watcher = StreamReader(resp2)
                assert (await watcher.next_event()) == {"start": {"pid": pid}}
                await unary(c, "process.Process/SendInput",
                            {"process": {"pid": pid}, "input": {"stdin": base64.b64encode(b"z\n").decode()}})
                for reader in (starter, watcher):
                    ev = await reader.next_event()
                    assert base64.b64decode(ev["data"]["stdout"]) == b"got z\n"
                    assert (await reader.next_event())["end"]["exitCode"] == 0
                    assert await reader.next() == (2, {})


async def test_connect_and_signal_unknown_pid_are_not_found(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Connect", {"process": {"pid": 999999}})
        assert r.end["error"]["code"] == "not_found"
        r2 = await unary(c, "process.Process/SendSignal", {"process": {"pid": 999999}, "signal": "SIGNAL_SIGKILL"})
    assert r2.status_code == 404 and r2.json()["code"] == "not_found"


async def test_send_signal_reaches_the_whole_process_group(daemon: Daemon) -> None:
    async with daemon.client() as c:
        async with c.stream("POST", "/process.Process/Start",
                            content=envelope(start_msg("sleep 1000 & echo $!; wait")),
                            headers={"content-type": "application/connect+json"}) as resp:
            reader = StreamReader(resp)
            pid = (await reader.next_event())["start"]["pid"]
            child = int(base64.b64decode((await reader.next_event())["data"]["stdout"]))
            # enum as a number this time
            r = await unary(c, "process.Process/SendSignal", {"process": {"pid": pid}, "signal": 15})
            assert r.status_code == 200
            end = (await reader.next_event())["end"]
            assert end["status"] == "signal: terminated"
        for _ in range(200):
            if not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z":
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("background child survived SIGTERM to the group")


async def test_invalid_signal_is_rejected(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await unary(c, "process.Process/SendSignal", {"process": {"pid": 1}, "signal": "SIGNAL_SIGSTOP"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"


async def test_connect_timeout_ms_is_the_process_lifetime(daemon: Daemon) -> None:
    """The process is killed at the deadline and the call answers with the deadline (E2B's
    envd: the SDK raises TimeoutException), not with the kill's exit status."""
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Start", start_msg("sleep 1000"), **{"connect-timeout-ms": "300"})
    # (that the process is really killed: tests/e2e/test_commands.py::test_command_timeout_kills_the_process)
    assert r.end["error"]["code"] == "deadline_exceeded" and not [e for e in r.events if "end" in e]


async def test_client_disconnect_does_not_kill_the_process(daemon: Daemon) -> None:
    async with daemon.client() as c:
        async with c.stream("POST", "/process.Process/Start", content=envelope(start_msg("read x; echo $x", stdin=True)),
                            headers={"content-type": "application/connect+json"}) as resp:
            pid = (await StreamReader(resp).next_event())["start"]["pid"]
    async with daemon.client() as c:
        async with c.stream("POST", "/process.Process/Connect", content=envelope({"process": {"pid": pid}}),
                            headers={"content-type": "application/connect+json"}) as resp:
            reader = StreamReader(resp)
            assert (await reader.next_event())["start"]["pid"] == pid
            await unary(c, "process.Process/SendInput",
                        {"process": {"pid": pid}, "input": {"stdin": base64.b64encode(b"still-here\n").decode()}})
            assert base64.b64decode((await reader.next_event())["data"]["stdout"]) == b"still-here\n"
            assert (await reader.next_event())["end"]["exitCode"] == 0


async def test_keepalive_is_sent_when_silent(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Start", start_msg("sleep 1.5; echo x"), **{"keepalive-ping-interval": "0.3"})
    kinds = [next(iter(e)) for e in r.events]
    assert kinds[0] == "start" and "keepalive" in kinds and kinds[-1] == "end"


async def test_pty_output_resize_and_controlling_tty(daemon: Daemon) -> None:
    async with daemon.client() as c:
        msg = {"process": {"cmd": "/bin/bash", "args": ["-c", "stty size; tty >/dev/null && echo has-tty; read x; stty size; echo got:$x"],
                           "envs": {"TERM": "xterm"}},
               "pty": {"size": {"cols": 100, "rows": 30}}}
        async with c.stream("POST", "/process.Process/Start", content=envelope(msg),
                            headers={"content-type": "application/connect+json"}) as resp:
            reader = StreamReader(resp)
            pid = (await reader.next_event())["start"]["pid"]
            out = b""
            while b"has-tty" not in out:
                ev = await reader.next_event()
                out += base64.b64decode(ev["data"]["pty"])
            assert b"30 100" in out
            r = await unary(c, "process.Process/Update", {"process": {"pid": pid}, "pty": {"size": {"cols": 120, "rows": 40}}})
            assert r.status_code == 200
            await unary(c, "process.Process/SendInput", {"process": {"pid": pid}, "input": {"pty": base64.b64encode(b"hello\n").decode()}})
            while True:
                ev = await reader.next_event()
                if "end" in ev:
                    break
                if "data" in ev:
                    out += base64.b64decode(ev["data"]["pty"])
        assert b"40 120" in out and b"got:hello" in out
        assert ev["end"]["exitCode"] == 0


async def test_update_on_a_pipe_process_is_failed_precondition(daemon: Daemon) -> None:
    async with daemon.client() as c:
        async with c.stream("POST", "/process.Process/Start", content=envelope(start_msg("read x", stdin=True)),
                            headers={"content-type": "application/connect+json"}) as resp:
            reader = StreamReader(resp)
            pid = (await reader.next_event())["start"]["pid"]
            r = await unary(c, "process.Process/Update", {"process": {"pid": pid}, "pty": {"size": {"cols": 1, "rows": 1}}})
            assert r.status_code == 400 and r.json()["code"] == "failed_precondition"
            await unary(c, "process.Process/SendSignal", {"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"})
            assert (await reader.next_event())["end"]["status"] == "signal: killed"


async def test_unary_deadline_exceeded(daemon: Daemon) -> None:
    """SendInput blocks on a full pipe (the process never reads); the deadline must fire."""
    async with daemon.client() as c:
        async with c.stream("POST", "/process.Process/Start", content=envelope(start_msg("sleep 1000", stdin=True)),
                            headers={"content-type": "application/connect+json"}) as resp:
            reader = StreamReader(resp)
            pid = (await reader.next_event())["start"]["pid"]
            big = base64.b64encode(b"x" * (4 * 1024 * 1024)).decode()
            r = await unary(c, "process.Process/SendInput", {"process": {"pid": pid}, "input": {"stdin": big}},
                            **{"connect-timeout-ms": "200"})
            assert r.status_code == 504 and r.json()["code"] == "deadline_exceeded"
            await unary(c, "process.Process/SendSignal", {"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"})
            assert "end" in await reader.next_event()


async def test_duplicate_running_tag_is_rejected(daemon: Daemon) -> None:
    async with daemon.client() as c:
        async with c.stream("POST", "/process.Process/Start", content=envelope(start_msg("read x; true", stdin=True, tag="dup")),
                            headers={"content-type": "application/connect+json"}) as resp:
            reader = StreamReader(resp)
            pid = (await reader.next_event())["start"]["pid"]
            r = await stream(c, "process.Process/Start", start_msg("true", tag="dup"))
            assert r.end["error"]["code"] == "already_exists"
            await unary(c, "process.Process/CloseStdin", {"process": {"pid": pid}})
            assert (await reader.next_event())["end"]["exitCode"] == 0


async def test_bad_requests_are_invalid_argument(daemon: Daemon) -> None:
    async with daemon.client() as c:
        r = await stream(c, "process.Process/Start", {"process": {"cmd": ""}})
        assert r.end["error"]["code"] == "invalid_argument"
        r = await stream(c, "process.Process/Start", {"process": {"cmd": "true", "envs": {"A": 1}}})
        assert r.end["error"]["code"] == "invalid_argument"
        r = await unary(c, "process.Process/SendInput", {"process": {"pid": 1}, "input": {"stdin": "!!notbase64"}})
        assert r.status_code in (400, 404)
        r = await unary(c, "process.Process/SendSignal", {"signal": "SIGNAL_SIGKILL"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
