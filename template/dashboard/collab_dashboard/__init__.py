"""The dashboard of an agent collab: server-rendered pages over the backend's public API."""

__version__ = "0.1.0"
