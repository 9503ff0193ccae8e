"""Load a configuration together with the plugins it names.

The daemon and the one-shot commands start the same way. Keeping this out of
``encmond.daemon`` spares the one-shot commands the import of the web server
and the scheduler.
"""

from __future__ import annotations

from encmond.config import Config, load_config
from encmond.plugins_loader import Plugins, load_plugins


def load(path: str) -> tuple[Config, Plugins]:
    """Load the configuration and plugins and validate one against the other."""
    config = load_config(path)
    plugins = load_plugins(config.plugin_dirs)
    config.bind_plugins(plugins.checks, plugins.notifiers)
    return config, plugins
