"""Bucket storage: one small interface (base.py) and its two adapters (local.py, hub.py)."""

from collab_backend.storage.base import (
    AccessDenied,
    Add,
    Copy,
    Delete,
    FileInfo,
    InvalidPath,
    NotFound,
    Op,
    Page,
    PartialWrite,
    Storage,
    StorageError,
    TooLarge,
    Unavailable,
    check_bucket,
    check_path,
)

__all__ = [
    "AccessDenied",
    "Add",
    "Copy",
    "Delete",
    "FileInfo",
    "InvalidPath",
    "NotFound",
    "Op",
    "Page",
    "PartialWrite",
    "Storage",
    "StorageError",
    "TooLarge",
    "Unavailable",
    "check_bucket",
    "check_path",
]
