"""The web catalog: server-rendered pages over the registry and the live runners, mounted at ``/ui``.

Every page reads through the same functions the CLI and the admin API use (``Registry`` methods,
``contract`` renderers, ``runner.waiting``, ``monitoring.metrics.render``); nothing here queries the
database itself. Pages work without JavaScript; htmx (vendored in ``static/``) only refreshes the live
figures of the endpoints page. Imported lazily, when the routed app is built (see ``server/shell.py``).
"""

from modelrunner.catalog.web import PREFIX, catalog_app, mount

__all__ = ["PREFIX", "catalog_app", "mount"]
