"""The `tabletop` command: migrate, admin accounts, scenario validation, first-start admin."""

import gc
import io
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app import cli
from app.auth import service as auth
from app.auth.models import Facilitator
from app.config import get_settings
from app.db import make_engine, migrate
from app.main import GC_THRESHOLDS, create_app


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("TABLETOP_DATABASE_URL", url)
    monkeypatch.delenv("TABLETOP_ADMIN_PASSWORD", raising=False)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _usernames(url: str) -> list[str]:
    engine = make_engine(url)
    with Session(engine) as session:
        names = list(session.exec(select(Facilitator.username)))
    engine.dispose()
    return names


def test_first_start_creates_admin_with_printed_password(
    sqlite_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli._prepare()
    out = capsys.readouterr().out
    assert "Loaded 10 scenarios" in out
    assert "created facilitator 'admin'" in out
    password = out.split("password:")[1].split()[0]
    engine = make_engine(sqlite_env)
    with Session(engine) as session:
        admin = session.exec(select(Facilitator)).one()
        assert auth.verify_password(admin.password_hash, password)
    engine.dispose()
    # The second start prints no password and creates nobody.
    cli._prepare()
    assert "password" not in capsys.readouterr().out
    assert _usernames(sqlite_env) == ["admin"]


def test_admin_password_from_environment(
    sqlite_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TABLETOP_ADMIN_PASSWORD", "from-the-env-123")
    get_settings.cache_clear()
    cli._prepare()
    assert "from-the-env-123" not in capsys.readouterr().out
    engine = make_engine(sqlite_env)
    with Session(engine) as session:
        admin = session.exec(select(Facilitator)).one()
        assert auth.verify_password(admin.password_hash, "from-the-env-123")
    engine.dispose()


def test_admin_add_and_reset(
    sqlite_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-password\n"))
    assert cli.main(["admin", "add", "carol", "--password-stdin"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("another-password\n"))
    assert cli.main(["admin", "add", "carol", "--password-stdin"]) == 1
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("new-password-1\n"))
    assert cli.main(["admin", "reset-password", "carol", "--password-stdin"]) == 0
    engine = make_engine(sqlite_env)
    with Session(engine) as session:
        carol = session.exec(select(Facilitator).where(Facilitator.username == "carol")).one()
        assert auth.verify_password(carol.password_hash, "new-password-1")
    engine.dispose()
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    with pytest.raises(SystemExit, match="at least 8"):
        cli.main(["admin", "add", "dave", "--password-stdin"])
    monkeypatch.setattr(sys, "stdin", io.StringIO("whatever-123\n"))
    assert cli.main(["admin", "reset-password", "nobody", "--password-stdin"]) == 1


def test_migrate(sqlite_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["migrate"]) == 0
    assert "newest schema" in capsys.readouterr().out
    assert _usernames(sqlite_env) == []


def test_scenarios_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["scenarios", "validate", "scenarios"]) == 0
    assert "jnsa-2018: 10 scenarios OK" in capsys.readouterr().out
    (tmp_path / "broken.yaml").write_text("set: demo\ntitle: {ja: デモ}\nscenarios: []\n")
    assert cli.main(["scenarios", "validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "broken.yaml" in err
    assert "title.en" in err


def test_backup_command(
    sqlite_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli._prepare()
    target = tmp_path / "copy.db"
    assert cli.main(["backup", str(target)]) == 0
    assert "Backed up" in capsys.readouterr().out
    assert _usernames(f"sqlite:///{target}") == ["admin"]
    assert cli.main(["backup", str(target)]) == 1
    assert "--force" in capsys.readouterr().err
    assert cli.main(["backup", str(target), "--force"]) == 0


def test_the_server_turns_the_collector_back_on(sqlite_env: str) -> None:
    # `tabletop serve` imports the app with the collector off; the running server needs it.
    migrate(sqlite_env)
    before = gc.get_threshold()
    gc.disable()
    try:
        with TestClient(create_app()) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.isenabled()
            assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.enable()
        gc.set_threshold(*before)
