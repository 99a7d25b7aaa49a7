from pathlib import Path

from pfstui.config import Settings, load_settings


def test_defaults_when_missing(tmp_path: Path):
    settings, problem = load_settings(tmp_path / "nope.yaml")
    assert settings == Settings() and problem is None


def test_good_file(tmp_path: Path):
    p = tmp_path / "config.yaml"
    p.write_text("theme: light\nbell: never\nkeymap:\n  queue.kill: ctrl+k\n")
    settings, problem = load_settings(p)
    assert problem is None and settings.theme == "light" and settings.keymap == {"queue.kill": "ctrl+k"}


def test_bad_files_name_the_problem(tmp_path: Path):
    p = tmp_path / "config.yaml"
    p.write_text("theme: purple\n")
    settings, problem = load_settings(p)
    assert settings == Settings() and "theme" in problem and str(p) in problem
    p.write_text("theme: [dark\n")
    settings, problem = load_settings(p)
    assert "not valid YAML" in problem and (":1" in problem or ":2" in problem)
    p.write_text("colour: blue\n")
    _, problem = load_settings(p)
    assert "colour" in problem


def test_settings_are_read_once_until_the_file_changes(tmp_path, monkeypatch):
    """The CLI and the app both ask at start: one read serves both; an edited file is read again."""
    import os

    import pfstui.config as config

    path = tmp_path / "config.yaml"
    path.write_text("theme: light\n")
    os.chmod(path, 0o600)
    reads = []
    real = config._read_settings
    monkeypatch.setattr(config, "_read_settings", lambda p: reads.append(p) or real(p))
    assert config.load_settings(path)[0].theme == "light"
    assert config.load_settings(path)[0].theme == "light"
    assert len(reads) == 1
    path.write_text("theme: dark\nbell: never\n")
    assert config.load_settings(path)[0].bell == "never"
    assert len(reads) == 2
