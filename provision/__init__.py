"""The provisioning library behind the `collab` command.

Its rooms, from the top down (each imports only rooms below it; tests/test_import_graph.py keeps
it so): `cli` and `demo`; `local`; `plan`; `onboarding`, `hub` and `challenge_types`; `spec`;
`migrations`; and `errors`, `paths` and `naming`, which import nothing of the kit.

Kept import-light on purpose: `python -m provision.migrations` runs inside Copier's own
interpreter during `copier update`, where only the standard library and PyYAML are sure to exist.
"""

__version__ = "0.1.0"
