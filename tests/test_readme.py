"""The README's plugin examples, loaded as drop-in files and run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from encmond.checkonce import run_once
from encmond.loading import load
from encmond.model import Status

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(language: str) -> list[str]:
    """Return the README's fenced code blocks of ``language`` under "## Plugins"."""
    text = README.read_text()
    plugins = text[text.index("## Plugins") :]
    return re.findall(rf"```{language}\n(.*?)```", plugins, re.DOTALL)


@pytest.fixture
def readme_plugins(tmp_path):
    directory = tmp_path / "plugins.d"
    directory.mkdir()
    for index, code in enumerate(blocks("python")):
        (directory / f"readme_{index}.py").write_text(code)
    return directory


def test_readme_check_runs(write_config, readme_plugins):
    config_path = write_config(plugins={"dirs": [str(readme_plugins)]})
    config, plugins = load(str(config_path))
    results = run_once(config, plugins, ["open_transactions"])
    assert [r.subject for r in results] == ["transactions"]
    assert results[0].status is Status.OK
    assert results[0].message == "0 long transactions"
