"""The collab backend: the coordination API, sole writer of the central bucket.

It runs as a Space (Docker) on the Hub, or as a local process over a folder in local mode.
"""

__version__ = "0.1.0"
