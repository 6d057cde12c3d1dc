"""Generate the spec reference (docs/challenge-spec.md) from the schema, so no default is retyped.

`nox -s docs` writes the file; a test fails when the committed copy is stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from provision.spec.schema import Schema, load_schema, resolve

HEADER = """\
# challenge.yaml reference

Generated from `schemas/challenge.schema.json` by `nox -s docs`; do not edit by hand.

Each row is one key. **Default** is what the loader fills in when the key is absent; a value in
braces is derived from other keys (`{challenge.org}` is read from the root, `{field}` from the
same entry). Keys without a default and marked *required* must be written.
"""


def _type_of(node: Schema) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    kinds = node.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    text = " or ".join(kinds)
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        items = resolve(node["items"])
        text = f"list of {items.get('type', 'any')}"
    return text


def _default_of(node: Schema) -> str:
    if isinstance(node.get("x-derived"), str):
        return f"`{node['x-derived']}`"
    if "default" in node:
        value = node["default"]
        if isinstance(value, dict) and not value:
            return "(section defaults)"
        return f"`{json.dumps(value)}`"
    return ""


def _rows(node: Schema, prefix: str, required: bool) -> Iterator[tuple[str, str, str, str]]:
    node = resolve(node)
    if prefix:
        description = node.get("description", "").replace("\n", " ")
        if node.get("deprecated"):
            description = "**Deprecated.** " + description
        extra = node.get("x-messages", {}).get("pattern")
        if extra:
            description += f" Rule: {extra}."
        name = f"`{prefix}`" + (" *required*" if required else "")
        yield name, _type_of(node), _default_of(node), description
    needed = set(node.get("required", ()))
    for key, child in node.get("properties", {}).items():
        yield from _rows(child, f"{prefix}.{key}" if prefix else key, key in needed)
    derived = node.get("x-derived")
    if isinstance(derived, dict):
        for key, template in derived.items():
            yield f"`{prefix}.{key}` (derived)", "string", f"`{template}`", "Derived when not written."
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        items = resolve(node["items"])
        for key, child in items.get("properties", {}).items():
            yield from _rows(child, f"{prefix}[].{key}", key in set(items.get("required", ())))


def render_reference() -> str:
    """The whole reference page as Markdown."""
    schema = load_schema()
    out = [HEADER, f"Schema id: `{schema['$id']}`\n"]
    for section, node in schema["properties"].items():
        out.append(f"\n## `{section}`\n\n{resolve(node).get('description', '')}\n")
        out.append("| key | type | default | description |\n|---|---|---|---|")
        required = section in set(schema.get("required", ()))
        for row in _rows(node, section, required):
            out.append(
                "| " + " | ".join(cell.replace("|", "\\|") if i != 1 else cell for i, cell in enumerate(row)) + " |"
            )
    return "\n".join(out) + "\n"


def main() -> None:
    """Print the reference (the docs session redirects it into docs/challenge-spec.md)."""
    print(render_reference(), end="")


if __name__ == "__main__":
    main()
