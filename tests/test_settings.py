"""The one settings table: argument > environment > default, for every ASSAY_* variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.client import Client
from assay.errors import ConfigError
from assay.models import _cache
from assay.scorers import judges
from assay.settings import DEFAULT_URL, Settings, from_environment, setting


def test_argument_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSAY_PROJECT", raising=False)
    assert setting("project") == "default" and from_environment("project") is None
    monkeypatch.setenv("ASSAY_PROJECT", "shop")
    assert setting("project") == "shop" and setting("project", "given") == "given"
    monkeypatch.setenv("ASSAY_PROJECT", "")  # empty is unset
    assert setting("project") == "default"
    monkeypatch.setenv("ASSAY_SEARCH_INDEX", "off")
    monkeypatch.setenv("ASSAY_PORT", "9000")
    settings = Settings.from_env(port=None, host="::1")
    assert settings.search_index is False and settings.port == 9000 and settings.host == "::1"
    assert Settings.from_env(port=9100).port == 9100
    with pytest.raises(KeyError):
        setting("no_such_setting")


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_PORT", "eighty")
    with pytest.raises(ConfigError, match="ASSAY_PORT='eighty'"):
        Settings.from_env()
    # ...and troubles only the code that reads it.
    assert setting("url") == DEFAULT_URL


def test_client_side_code_reads_the_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSAY_URL", "http://assay.internal:9/")
    monkeypatch.setenv("ASSAY_API_KEY", "ak-123")
    client = Client()
    assert client.url == "http://assay.internal:9" and client.api_key == "ak-123"
    monkeypatch.setenv("ASSAY_JUDGE_MODEL", "anthropic/claude-haiku-4-5")
    assert judges.default_model() == "anthropic/claude-haiku-4-5"
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path))
    assert _cache.default_cache_dir() == tmp_path / "models"
    monkeypatch.setenv("ASSAY_MODEL_CACHE", "sometimes")
    with pytest.raises(ConfigError, match="ASSAY_MODEL_CACHE"):
        _cache.cache_mode()


def test_settings_for_worker_processes() -> None:
    settings = Settings(host="0.0.0.0", port=8700, database_url="sqlite:///x.db")
    assert settings.environment("host", "port", "database_url") == {
        "ASSAY_HOST": "0.0.0.0",
        "ASSAY_PORT": "8700",
        "ASSAY_DATABASE_URL": "sqlite:///x.db",
    }
