import re
from pathlib import Path

import pytest

from conf.settings import SettingsError, load_settings, setting_names


def test_defaults_need_no_environment() -> None:
    settings = load_settings()
    assert settings.mls2_data_dir == Path(".mls2")
    assert not settings.has_qobrix_credentials
    assert settings.mls2_page_size == 100


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("QOBRIX_API_USER=from-dotenv\nMLS2_DATA_DIR=/tmp/elsewhere\n")
    monkeypatch.setenv("QOBRIX_API_KEY", "from-env")
    monkeypatch.setenv("QOBRIX_API_BASE_URL", "https://acme.qobrix.com/api/v2/")
    settings = load_settings()
    assert settings.require_qobrix() == ("https://acme.qobrix.com/api/v2", "from-dotenv", "from-env")
    assert settings.paths.landing == Path("/tmp/elsewhere/landing")


def test_missing_credentials_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QOBRIX_API_USER", "  ")
    with pytest.raises(SettingsError, match="QOBRIX_API_BASE_URL, QOBRIX_API_USER, QOBRIX_API_KEY"):
        load_settings().require_qobrix()


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("MLS2_PAGE_SIZE", "500", "mls2_page_size"),
        ("MLS2_API_PORT", "http", "mls2_api_port"),
        ("QOBRIX_API_BASE_URL", "not a url", "qobrix_api_base_url"),
    ],
)
def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=problem):
        load_settings()


def test_the_replaced_key_index_threshold_is_refused_naming_its_successor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """From the environment or `.env`: a threshold once set must not be silently ignored."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MLS2_ENGINE_KEY_INDEX_ROWS=1000000\n")
    with pytest.raises(SettingsError, match="MLS2_ENGINE_KEY_INDEX_ROWS was replaced by MLS2_ENGINE_KEY_INDEX_CELLS"):
        load_settings()
    (tmp_path / ".env").unlink()
    monkeypatch.setenv("MLS2_ENGINE_KEY_INDEX_ROWS", "0")
    with pytest.raises(SettingsError, match="MLS2_ENGINE_KEY_INDEX_CELLS"):
        load_settings()
    monkeypatch.delenv("MLS2_ENGINE_KEY_INDEX_ROWS")
    assert load_settings().mls2_engine_key_index_cells == 100_000_000


def test_the_example_environment_file_loads_and_documents_every_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`cp .env.example .env` is how a deployment starts: it must load, and name every setting."""
    example = (Path(__file__).parent.parent / ".env.example").read_text()
    (tmp_path / ".env").write_text(example)
    monkeypatch.chdir(tmp_path)
    load_settings()
    named = {name.lower() for name in re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE)}
    settings = setting_names()
    assert settings - named == set(), "settings .env.example does not document"
    assert named - settings == set(), ".env.example names what is not a setting"
