"""Issue 19, item 8: secrets and permissions. A store URL's password is never echoed,
even in the errors of a malformed URL; a new ledger's directory is closed to other
users; a signing key other users can read is refused before anything is written."""

from __future__ import annotations

import json
import stat

import pytest
from arms_ledger.cli.main import cli
from click.testing import CliRunner

from tests.cli.conftest import one_line_error, registration

EVENT = registration()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://u:SECRETPW@127.0.0.1:99999/test",
            "store URL 'postgresql://u:***@127.0.0.1:99999/test': not a valid URL",
        ),
        (
            "mysql://u:SECRETPW@host/db",
            "store 'mysql://u:***@host/db': expected `sqlite` or a URL like "
            "postgresql://user@127.0.0.1:5432/dbname",
        ),
        (
            "postgresql://u:SECRET/PW@[::1/test",  # the parser would quote SECRET as a port
            "store URL 'postgresql://u:***@[::1/test': not a valid URL",
        ),
    ],
)
def test_a_store_url_password_is_never_echoed(tmp_path, url, message):
    result = CliRunner().invoke(
        cli, ["--ledger", str(tmp_path / "l"), "--store", url, "init"]
    )
    one_line_error(result, message)
    assert "SECRET" not in result.output


def test_a_new_ledger_directory_is_closed_to_other_users(run, ledger_dir):
    assert run("init").exit_code == 0
    assert stat.S_IMODE(ledger_dir.stat().st_mode) & 0o007 == 0
    assert stat.S_IMODE((ledger_dir / "signing.key").stat().st_mode) == 0o600


def test_a_signing_key_others_can_read_is_refused_before_writing(run, ledger_dir):
    assert run("init").exit_code == 0
    key = ledger_dir / "signing.key"
    key.chmod(0o644)
    one_line_error(
        run("append", "-", input=json.dumps(EVENT) + "\n"),
        f"{key} can be read by other users (mode 0644): whoever reads it can sign "
        "checkpoints in this ledger's name; nothing was written; make it private "
        f"(`chmod 600 {key}`), and if others may have read it, treat the key as "
        "compromised",
    )
    assert run("log", "--json").stdout == "[]\n"  # reading needs no key
    key.chmod(0o600)
    assert run("append", "-", input=json.dumps(EVENT) + "\n").exit_code == 0


def test_a_replica_is_not_written_through_a_symbolic_link(run, tmp_path):
    """Issue 19, item 6: `verify-export --into LINK` does not write where LINK points."""
    assert run("init").exit_code == 0
    assert run("append", "-", input=json.dumps(EVENT) + "\n").exit_code == 0
    assert run("audit", "export", str(tmp_path / "export")).exit_code == 0
    target, link = tmp_path / "elsewhere", tmp_path / "replica"
    target.mkdir()
    link.symlink_to(target)
    result = CliRunner().invoke(
        cli, ["audit", "verify-export", str(tmp_path / "export"), "--into", str(link)]
    )
    one_line_error(
        result,
        f"{link} is a symbolic link; name the directory itself (the files would be "
        "written wherever the link points)",
    )
    assert list(target.iterdir()) == []
