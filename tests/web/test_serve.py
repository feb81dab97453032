"""``arms-ledger serve``: its errors through CliRunner, and the real server in a
subprocess (live, and a replay), stopped as a service manager stops it."""

from __future__ import annotations

import json
import os
import socket

import pytest
from arms_ledger.cli.main import cli
from click.testing import CliRunner

from tests.web.conftest import free_port, serving


def serve(*args: str):
    return CliRunner().invoke(cli, [*args])


def test_serve_needs_a_ledger(tmp_path):
    result = serve("--ledger", str(tmp_path / "nowhere"), "serve")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no ledger at {tmp_path / 'nowhere'}; create one with `arms-ledger init`, "
        "or point --ledger / ARMS_LEDGER at an existing one\n"
    )


def test_serve_refuses_a_bad_time(demo_ledger):
    result = serve("--ledger", str(demo_ledger), "serve", "--as-of", "yesterday")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Invalid value for --as-of: --as-of 'yesterday' is not an RFC 3339 date or "
        "datetime; use e.g. 2026-02-06 or 2026-02-06T14:30:00Z\n"
    )


def test_serve_refuses_a_position_beyond_the_log(demo_ledger):
    result = serve(
        "--ledger",
        str(demo_ledger),
        "serve",
        "--at-position",
        "5000",
        "--port",
        str(free_port()),
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the log ends at position 917; --at-position 5000 is beyond it\n"
    )


def test_serve_says_when_the_port_is_taken(demo_ledger):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve("--ledger", str(demo_ledger), "serve", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: cannot serve on 127.0.0.1:{port}: Address already in use; choose another "
        "--port, or stop what is using it\n"
    )


def test_serve_says_when_the_host_is_unknown(demo_ledger):
    result = serve("--ledger", str(demo_ledger), "serve", "--host", "no-such-host.invalid")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot serve on host 'no-such-host.invalid': ")
    assert result.stderr.endswith("; give an address such as 127.0.0.1 to --host\n")
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_bad_port(demo_ledger):
    result = serve("--ledger", str(demo_ledger), "serve", "--port", "70000")
    assert result.exit_code == 2
    assert "Error: Invalid value for '--port': 70000 is not in the range 1<=x<=65535." in (
        result.stderr
    )


@pytest.mark.slow
def test_a_replay_is_served_and_removed_when_stopped(demo_ledger, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = os.environ | {"TMPDIR": str(scratch)}
    with serving(demo_ledger, "--as-of", "2026-02-05", env=env) as server:
        assert next(p.name for p in scratch.iterdir()).startswith("arms-ledger-serve-")
        status, body = server.get(
            "/projections/platform_queue.json?platform=m1a2-sepv3&_shape=array"
        )
        assert status == 200
        assert [r["case"] for r in json.loads(body)] == [
            "TW-B-ABR",
            "AT-B-ABR",
            "PL-B-ABR",
            "RO-B-ABR",
        ]
        status, body = server.get("/projections.json?sql=select+1")
        assert status == 403
        # The what-if page compares as of the cut served, as whatif --as-of does.
        status, body = server.get(
            "/-/whatif.json?platform=m1a2-sepv3&investment=0.25&strategic=0.25&economic=0.5"
        )
        assert status == 200, body
        whatif = serve(
            "--ledger",
            str(demo_ledger),
            "whatif",
            "--weights",
            "0.25,0.25,0.5",
            "--as-of",
            "2026-02-05",
            "--json",
        )
        assert whatif.exit_code == 0, whatif.stderr
        expected = json.loads(whatif.stdout)
        assert {k: v for k, v in json.loads(body).items() if k in expected} == expected
        code, stderr = server.stop()
    assert code == 0
    assert stderr == (
        f"Serving a replay as of 2026-02-05T00:00:00Z at http://127.0.0.1:{server.port}/ "
        "(read-only; Ctrl-C stops).\nStopped.\n"
    )
    assert list(scratch.iterdir()) == []


@pytest.mark.slow
def test_live_the_web_view_shows_what_the_last_append_wrote(ledger_copy):
    path = "/projections/platform_queue.json?platform=ah-64e&_shape=array"
    with serving(ledger_copy) as server:
        _, body = server.get(path)
        assert [(r["case"], r["priority_class"]) for r in json.loads(body)][:2] == [
            ("PL-B-AHA", "normal"),
            ("KU-B-AHE", "normal"),
        ]
        event = json.dumps(
            {
                "type": "CaseReprioritized",
                "case": "KU-B-AHE",
                "priority_class": "expedited",
                "authority": "USW(A&S)",
                "actor": "usw-as",
                "rationale": "a test",
            }
        )
        appended = CliRunner().invoke(
            cli, ["--ledger", str(ledger_copy), "append", "-"], input=event + "\n"
        )
        assert appended.exit_code == 0, appended.stderr
        _status, body = server.get(path)
        assert [(r["case"], r["priority_class"]) for r in json.loads(body)][:2] == [
            ("KU-B-AHE", "expedited"),
            ("PL-B-AHA", "normal"),
        ]
        _status, page = server.get("/")
        assert "Live read models, up to log position 918," in page
