import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _import_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    clean.update(CRENEAU_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_refuses_to_start_without_secrets(tmp_path):
    result = _import_settings(tmp_path, DEBUG="off")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
    assert not (tmp_path / "secrets").exists()


def test_development_generates_secrets_once(tmp_path):
    assert _import_settings(tmp_path, DEBUG="on").returncode == 0
    first = (tmp_path / "secrets" / "field_encryption_keys").read_text()
    assert _import_settings(tmp_path, DEBUG="on").returncode == 0
    assert (tmp_path / "secrets" / "field_encryption_keys").read_text() == first
    assert oct((tmp_path / "secrets" / "secret_key").stat().st_mode & 0o777) == "0o600"


@pytest.mark.django_db
def test_healthz_reports_database_reachable(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Request-ID"]
