"""Protocol adapters over the runner: native REST, Open Inference Protocol V2, management API, metrics.

``modelrunner.server.app.create_app(runtime, settings)`` is the composition root.
"""
