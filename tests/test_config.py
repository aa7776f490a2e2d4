import re
from pathlib import Path

import pytest

from telemon.config import SettingFileError, Settings

ROOT = Path(__file__).resolve().parents[1]


def test_env_example_documents_every_setting_and_nothing_else():
    text = (ROOT / ".env.example").read_text()
    documented = {m.lower() for m in re.findall(r"^#?\s*TELEMON_([A-Z0-9_]+)=", text, re.M)}
    assert documented == set(Settings.model_fields)


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("TELEMON_DATABASE_URL", "postgresql://x@db/telemon")
    monkeypatch.setenv("TELEMON_INGEST_BATCH_SIZE", "250")
    monkeypatch.setenv("TELEMON_LANGUAGE", "en")
    settings = Settings()
    assert settings.database_url == "postgresql://x@db/telemon"
    assert settings.ingest_batch_size == 250
    assert settings.language == "en"
    assert settings.mqtt_url is None


def test_a_setting_from_a_file_loses_only_the_trailing_newline(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "auth_token"
    secret.write_text("tok en\n")  # as `echo token > file` writes it; inner spaces are kept
    url = tmp_path / "database_url"
    url.write_text("postgresql://telemon:p%40ss@db/telemon\r\n")
    monkeypatch.setenv("TELEMON_TWILIO_AUTH_TOKEN_FILE", str(secret))
    monkeypatch.setenv("TELEMON_DATABASE_URL_FILE", str(url))
    settings = Settings()
    assert settings.twilio_auth_token.get_secret_value() == "tok en"
    assert settings.database_url == "postgresql://telemon:p%40ss@db/telemon"


def test_a_file_outranks_the_dotenv_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TELEMON_STATUS_TOKEN=from-dotenv\n")
    (tmp_path / "status_token").write_text("from-file")
    monkeypatch.setenv("TELEMON_STATUS_TOKEN_FILE", str(tmp_path / "status_token"))
    assert Settings().status_token.get_secret_value() == "from-file"


@pytest.mark.parametrize(
    ("content", "direct", "message"),
    [
        (None, None, "cannot read it"),
        ("", None, "the file is empty"),
        ("\n", None, "the file is empty"),
        ("s3cret\n", "also-set", "both TELEMON_SECRET_KEY and TELEMON_SECRET_KEY_FILE are set"),
    ],
)
def test_an_unusable_setting_file_is_refused_with_the_reason(
    monkeypatch, tmp_path, content, direct, message
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "secret_key"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("TELEMON_SECRET_KEY_FILE", str(path))
    if direct is not None:
        monkeypatch.setenv("TELEMON_SECRET_KEY", direct)
    with pytest.raises(SettingFileError, match=re.escape(message)) as raised:
        Settings()
    assert "s3cret" not in str(raised.value)  # the reason names the file, never the secret


def test_a_service_connects_with_the_url_from_its_file(database_url, tmp_path):
    from tests.test_cli import run_cli

    url_file = tmp_path / "database_url"
    url_file.write_text(database_url + "\n")
    result = run_cli("migrate", env={"TELEMON_DATABASE_URL_FILE": str(url_file)})
    assert result.returncode == 0, result.stderr


def test_a_service_with_an_unreadable_setting_file_says_why_in_one_line(tmp_path):
    from tests.test_cli import run_cli

    missing = tmp_path / "nowhere" / "database_url"
    result = run_cli("migrate", env={"TELEMON_DATABASE_URL_FILE": str(missing)})
    assert result.returncode == 2
    assert f"error: TELEMON_DATABASE_URL_FILE={missing}: cannot read it" in result.stderr
    assert "Traceback" not in result.stderr
