import re
from pathlib import Path

from telemon.config import Settings

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
