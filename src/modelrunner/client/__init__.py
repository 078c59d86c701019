"""A Python client for a modelrunner server: ``mr.Client(url, token=None)`` and ``mr.AsyncClient``.

    import modelrunner as mr
    with mr.Client("http://127.0.0.1:8080") as client:
        out = client.predict("digits", X[:3])      # {"label": array([...]), "proba": array([[...]])}

Built on httpx; imports the contract and error layers only (never server/ or runner/). docs/client.md.
"""

from modelrunner.client.clients import AsyncClient, Client
from modelrunner.client.frames import Prediction

__all__ = ["AsyncClient", "Client", "Prediction"]
