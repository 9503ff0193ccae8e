"""Plugin loading: bundled plugins, drop-in files and their failures."""

import pytest

from encmond.errors import PluginError
from encmond.plugins_loader import load_plugins

TYPO_HOOK = """\
from encmond import hookimpl


@hookimpl
def register_chekcs():
    return []
"""

DUPLICATE = """\
from encmond import Check, hookimpl


class Again(Check):
    name = "connection"


@hookimpl
def register_checks():
    return [Again]
"""


def drop_in(tmp_path, text, name="plugin.py"):
    directory = tmp_path / "plugins.d"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)
    return directory


def test_bundled_plugins_registered():
    plugins = load_plugins([])
    assert {"connection", "replica_lag", "checksum", "row_count"} <= set(plugins.checks)
    assert "log" in plugins.notifiers
    origins = {info.origin for info in plugins.infos.values()}
    assert origins == {"bundled"}


def test_unknown_hook_names_plugin(tmp_path):
    directory = drop_in(tmp_path, TYPO_HOOK, "typo.py")
    with pytest.raises(PluginError) as caught:
        load_plugins([directory])
    assert str(directory / "typo.py") in str(caught.value)
    assert "register_chekcs" in str(caught.value)


def test_duplicate_check_name(tmp_path):
    with pytest.raises(PluginError, match="both register name 'connection'"):
        load_plugins([drop_in(tmp_path, DUPLICATE)])


def test_import_error_named(tmp_path):
    directory = drop_in(tmp_path, "import not_a_module_here\n", "broken.py")
    with pytest.raises(PluginError, match="broken.py failed to import"):
        load_plugins([directory])


def test_trace_logs_register_hooks(monkeypatch, caplog):
    monkeypatch.setenv("ENCMOND_TRACE_HOOKS", "1")
    with caplog.at_level("INFO", logger="encmond.hooks"):
        load_plugins([])
    assert any("register_checks" in record.getMessage() for record in caplog.records)
