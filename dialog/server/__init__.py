"""The HTTP service (``pip install 'durable-dialog[server]'``, ``dialog serve``): see ``dialog.server.app``."""

from dialog.server.app import app_from_env, create_app
from dialog.server.metrics import Metrics

__all__ = ["Metrics", "app_from_env", "create_app"]
