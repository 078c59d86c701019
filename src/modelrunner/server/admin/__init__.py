"""The management side: ``/admin`` (``routes``, pydantic ``schemas``), the V2 repository extension
(``repository``), and waiting for a rollout (``rollout``). Registry calls run in the thread pool."""
