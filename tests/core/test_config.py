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
