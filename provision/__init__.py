"""The provisioning library behind the `collab` command.

Kept import-light on purpose: `python -m provision.migrations` runs inside Copier's own
interpreter during `copier update`, where only the standard library and PyYAML are sure to exist.
"""

__version__ = "0.1.0"
