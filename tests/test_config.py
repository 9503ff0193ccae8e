"""Configuration loading and validation, on real files in tmp_path."""

import textwrap

import pytest

from encmond.cli import main
from encmond.config import load_config, quote_identifier
from encmond.errors import ConfigError
from encmond.loading import load
from encmond.settings import Secret, duration

BASE = """\
source:
  host: db-old.example.internal
  port: 3306
  user: encmond
  password: source-secret
target:
  host: db-new.example.internal
  user: encmond
  password_file: target.password
tables: [shop.orders, shop.customers]
checks:
  replica_lag: {interval: 5s, warning: 30s, critical: 5m}
  checksum:    {interval: 15m}
  row_count:   {interval: 1m}
  connection:  {interval: 10s}
storage: {path: encmond.db, retention: 24h}
web: {listen: "127.0.0.1:8080", auth_token_file: null}
notifiers:
  - {type: log}
plugins: {dirs: []}
"""


@pytest.fixture
def write(tmp_path):
    (tmp_path / "target.password").write_text("target-secret\n")

    def write(text=BASE, name="config.yaml"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write


def error_of(path, environ=None):
    with pytest.raises(ConfigError) as caught:
        config = load_config(path, environ or {})
        from encmond.plugins_loader import load_plugins

        plugins = load_plugins(config.plugin_dirs)
        config.bind_plugins(plugins.checks, plugins.notifiers)
    return caught.value


def test_load_spec_example(write):
    config, _ = load(write())
    assert config.source.host == "db-old.example.internal"
    assert config.source.password.reveal() == "source-secret"
    assert config.targets["target"].password.reveal() == "target-secret"
    assert config.targets["target"].port == 3306
    assert [str(t) for t in config.tables] == ["shop.orders", "shop.customers"]
    assert config.checks["replica_lag"]["interval"] == 5.0
    assert config.checks["replica_lag"]["critical"] == 300.0
    assert config.checks["checksum"]["interval"] == 900.0
    assert config.storage["retention"] == 86400.0
    assert config.storage["path"].endswith("/encmond.db")
    assert config.web.host == "127.0.0.1"
    assert config.web.port == 8080
    assert config.notifiers[0]["name"] == "log"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("24h", 86400.0),
        (12, 12.0),
        ("1.5", 1.5),
        ("2d", 172800.0),
    ],
)
def test_duration_units(text, seconds):
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "-1s", "s", True, "1w"])
def test_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        duration(text)


def test_unknown_key_names_nearest(write):
    path = write(BASE.replace("interval: 5s, warning", "intervl: 5s, warning"))
    error = error_of(path)
    assert error.line == 12
    assert error.key == "checks.replica_lag.intervl"
    assert "did you mean 'interval'" in str(error)
    assert path in str(error)


def test_unknown_top_key(write):
    error = error_of(write(BASE + "tabels: []\n"))
    assert "did you mean 'tables'" in str(error)
    assert error.line == 21


def test_bad_value_names_allowed(write):
    error = error_of(write(BASE.replace("retention: 24h", "retention: forever")))
    assert error.key == "storage.retention"
    assert "'forever'" in str(error)
    assert "500ms, 30s, 5m, 24h" in str(error)
    assert error.line == 16


def test_unknown_check_named(write):
    error = error_of(
        write(
            BASE.replace(
                "  checksum:    {interval: 15m}", "  checksums:    {interval: 15m}"
            )
        )
    )
    assert "unknown check 'checksums'" in str(error)
    assert "did you mean 'checksum'" in str(error)


def test_unknown_notifier_type(write):
    error = error_of(write(BASE.replace("{type: log}", "{type: logg}")))
    assert "unknown notifier type 'logg'" in str(error)
    assert error.key == "notifiers.0.type"


def test_bad_severity_lists_allowed(write):
    error = error_of(
        write(BASE.replace("{type: log}", "{type: log, min_severity: LOUD}"))
    )
    assert "INFO, WARNING, CRITICAL" in str(error)


def test_invalid_yaml_line(write):
    error = error_of(
        write(
            BASE.replace("tables: [shop.orders,", "tables: [shop.orders").replace(
                "shop.customers]", "shop.customers"
            )
        )
    )
    assert "invalid YAML" in str(error)
    assert error.line is not None


def test_environment_overrides(write):
    environ = {
        "SOURCE_DB_HOST": "10.0.0.1",
        "SOURCE_DB_PORT": "3307",
        "SOURCE_DB_USERNAME": "monitor",
        "SOURCE_DB_PASSWORD": "from-env",
        "TARGET_DB_PASSWORD": "target-env",
    }
    config = load_config(write(), environ)
    assert config.source.host == "10.0.0.1"
    assert config.source.port == 3307
    assert config.source.user == "monitor"
    assert config.source.password.reveal() == "from-env"
    assert config.targets["target"].password.reveal() == "target-env"


def test_environment_bad_port_named(write):
    error = error_of(write(), {"SOURCE_DB_PORT": "abc"})
    assert "SOURCE_DB_PORT" in str(error)
    assert "whole number" in str(error)


def test_password_file_missing(write):
    error = error_of(write(BASE.replace("target.password", "nothere.password")))
    assert error.key == "target.password_file"
    assert "file not found" in str(error)


def test_password_and_file_conflict(write):
    text = BASE.replace(
        "  password_file: target.password",
        "  password_file: target.password\n  password: x",
    )
    assert "not both" in str(error_of(write(text)))


def test_several_targets(write):
    text = BASE.replace(
        "target:\n  host: db-new.example.internal\n  user: encmond\n"
        "  password_file: target.password\n",
        "targets:\n  encrypted: {host: a, user: u}\n  replica: {host: b, user: u}\n",
    )
    config = load_config(write(text), {"REPLICA_DB_PORT": "3310"})
    assert list(config.targets) == ["encrypted", "replica"]
    assert config.targets["replica"].port == 3310
    assert config.targets["encrypted"].role == "target"


def test_target_and_targets_conflict(write):
    text = BASE + "targets:\n  other: {host: b, user: u}\n"
    assert "either 'target' or 'targets'" in str(error_of(write(text)))


def test_ssl_settings(write, tmp_path):
    (tmp_path / "ca.pem").write_text("not checked here")
    text = BASE.replace(
        "  password: source-secret",
        "  password: source-secret\n  ssl: {ca: ca.pem, verify_identity: true}",
    )
    config = load_config(write(text), {})
    assert config.source.ssl["ca"] == str(tmp_path / "ca.pem")
    assert config.source.ssl["verify_identity"] is True
    assert config.source.ssl["verify_cert"] is True


def test_table_name_forms(write):
    text = BASE.replace(
        "tables: [shop.orders, shop.customers]",
        "tables: ['shop.a`b', {schema: 'my.db', table: 'tä-ble'}]",
    )
    tables = load_config(write(text), {}).tables
    assert tables[0].quoted == "`shop`.`a``b`"
    assert tables[1].quoted == "`my.db`.`tä-ble`"


def test_table_without_schema(write):
    error = error_of(write(BASE.replace("shop.customers]", "customers]")))
    assert "schema.table" in str(error)
    assert error.key == "tables.1"


def test_quote_identifier_rejects_nul():
    with pytest.raises(ValueError):
        quote_identifier("a\x00b")


def test_secret_hidden_in_repr():
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in repr({"password": secret})


def test_validate_hides_secrets(write, capsys):
    path = write()
    assert main(["validate", "-c", path]) == 0
    output = capsys.readouterr()
    assert "configuration OK" in output.out
    for secret in ("source-secret", "target-secret"):
        assert secret not in output.out
        assert secret not in output.err


def test_validate_error_exit_78(write, capsys):
    path = write(BASE.replace("port: 3306", "port: 99999"))
    assert main(["validate", "-c", path]) == 78
    err = capsys.readouterr().err
    assert "source.port" in err
    assert "99999" in err
    assert "source-secret" not in err


def test_config_from_environment_path(write, monkeypatch, capsys):
    monkeypatch.setenv("ENCMOND_CONFIG", write())
    assert main(["validate"]) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_usage_error_exit_78(capsys):
    assert main(["frobnicate"]) == 78
    assert "invalid choice" in capsys.readouterr().err


def test_password_number_rejected(write):
    error = error_of(write(BASE.replace("password: source-secret", "password: 0123")))
    assert error.key == "source.password"
    assert "in quotes" in str(error)
    assert "0123" not in str(error)
    assert "83" not in str(error)


def test_password_masked_everywhere(write):
    text = BASE.replace("password: source-secret", "password: &pw LEAKpw11")
    text = text.replace(
        "  user: encmond\n  password_file",
        "  port: *pw\n  user: encmond\n  password_file",
        1,
    )
    error = error_of(write(text))
    assert error.key == "target.port"
    assert "LEAKpw11" not in str(error)
    assert "***" in str(error)


def test_short_password_not_masked_in_words(write):
    text = BASE.replace("password: source-secret", "password: 'y'")
    text = text.replace("connection:  {interval: 10s}", "connection:  {intervall: 10s}")
    error = error_of(write(text))
    assert "unknown key 'intervall'; did you mean 'interval'?" in str(error)
    assert "***" not in str(error)


def test_empty_password_file_rejected(write, tmp_path):
    (tmp_path / "target.password").write_text("")
    error = error_of(write())
    assert error.key == "target.password_file"
    assert "is empty" in str(error)


def test_url_credentials_rejected(write):
    text = BASE.replace(
        "  - {type: log}",
        "  - {type: webhook, url: 'http://admin:Hunter22@127.0.0.1:9093/hook'}",
    )
    error = error_of(write(text))
    assert error.key == "notifiers.0.url"
    assert "credentials in the URL" in str(error)
    assert "Hunter22" not in str(error)


def test_password_list_masked(write):
    error = error_of(
        write(BASE.replace("password: source-secret", "password: [LEAKpw1]"))
    )
    assert "LEAKpw1" not in str(error)


@pytest.mark.parametrize("value", [".nan", ".inf", "1ms"])
def test_interval_rejects_value(write, value):
    text = BASE.replace(
        "connection:  {interval: 10s}", f"connection:  {{interval: {value}}}"
    )
    error = error_of(write(text))
    assert error.key == "checks.connection.interval"


def test_port_ascii_digits_only(write):
    error = error_of(write(), {"SOURCE_DB_PORT": "٣٣٠٦"})
    assert "SOURCE_DB_PORT" in str(error)


@pytest.mark.parametrize("variable", ["SOURCE_DB_HOST", "SOURCE_DB_USERNAME"])
def test_empty_name_rejected(write, variable):
    error = error_of(write(), {variable: ""})
    assert "non-empty" in str(error)


def test_host_with_newline_rejected(write):
    assert "control characters" in str(error_of(write(), {"SOURCE_DB_HOST": "a\nb"}))


def test_warning_above_critical(write):
    text = BASE.replace("warning: 30s, critical: 5m", "warning: 10m, critical: 1m")
    error = error_of(write(text))
    assert error.key == "checks.replica_lag"
    assert "must not exceed critical" in str(error)


def test_notifier_check_filter_typo(write):
    text = BASE.replace("{type: log}", "{type: log, checks: [conection]}")
    error = error_of(write(text))
    assert error.key == "notifiers.0.checks.0"
    assert "did you mean 'connection'" in str(error)


def test_table_name_with_dot_shown_quoted(write):
    text = BASE.replace(
        "tables: [shop.orders, shop.customers]",
        "tables: [{schema: shop, table: a.b}, {schema: shop.a, table: b}]",
    )
    names = [str(table) for table in load_config(write(text), {}).tables]
    assert names == ["`shop`.`a.b`", "`shop.a`.`b`"]


def test_table_control_character(write):
    text = BASE.replace("shop.customers]", '"shop.a\\x00b"]')
    assert "control character" in str(error_of(write(text)))


def test_password_file_directory(write, tmp_path):
    (tmp_path / "secrets").mkdir()
    error = error_of(write(BASE.replace("target.password", "secrets")))
    assert "is a directory" in str(error)


def test_password_file_not_utf8(write, tmp_path):
    (tmp_path / "target.password").write_bytes(b"LEAKfile\xff\xfe\n")
    error = error_of(write())
    assert "not valid UTF-8" in str(error)
    assert "LEAKfile" not in str(error)
