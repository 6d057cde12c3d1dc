"""Edit YAML text in place, by the positions PyYAML reports, so comments and layout survive.

challenge.yaml belongs to its owner: a migration changes only the spans it must and leaves every
comment, blank line and quote style as it was.
"""

from __future__ import annotations

import yaml


def find(text: str, path: tuple[str, ...]) -> tuple[yaml.ScalarNode, yaml.Node] | None:
    """The (key, value) nodes at a mapping path, or None when the path is absent."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    pair: tuple[yaml.ScalarNode, yaml.Node] | None = None
    for part in path:
        if not isinstance(node, yaml.MappingNode):
            return None
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                pair, node = (key, value), value
                break
        else:
            return None
    return pair


def scalar_text(node: yaml.ScalarNode, value: str) -> str:
    """`value` written in the quote style `node` used."""
    style = node.style or ""
    return f"{style}{value}{style}" if style in ("'", '"') else value


def apply_edits(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace [start, end) spans with new text; spans must not overlap."""
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def set_top_level_scalar(text: str, key: str, value: str) -> str:
    """Set a top-level scalar, inserting `key: value` after the leading comments when absent."""
    found = find(text, (key,))
    if found and isinstance(found[1], yaml.ScalarNode):
        node = found[1]
        return apply_edits(text, [(node.start_mark.index, node.end_mark.index, scalar_text(node, value))])
    lines = text.splitlines(keepends=True)
    at = 0
    while at < len(lines) and lines[at].lstrip().startswith("#"):
        at += 1
    lines.insert(at, f"{key}: {value}\n")
    return "".join(lines)


def rename_key(text: str, path: tuple[str, ...], new: str, values: dict[object, object]) -> str:
    """Rename the key at `path` to `new`, mapping its scalar value through `values`."""
    found = find(text, path)
    if found is None:
        return text
    key, value = found
    edits = [(key.start_mark.index, key.end_mark.index, scalar_text(key, new))]
    if isinstance(value, yaml.ScalarNode) and value.value in values:
        edits.append((value.start_mark.index, value.end_mark.index, scalar_text(value, str(values[value.value]))))
    return apply_edits(text, edits)
