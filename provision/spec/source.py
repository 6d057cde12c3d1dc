"""Read YAML into plain data plus a map from every JSON path to its line and column.

The spec is untrusted text (anyone can open a pull request against a collab), so parsing is
bounded: a size cap, a cap on nodes after aliases expand (a "billion laughs" document is refused
before anything walks it), a depth cap, and refusal of recursive aliases. Duplicate keys, which
PyYAML silently resolves to the last one, are reported so that no edit is quietly lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from provision.spec.problems import JsonPath, Problem, show_value

MAX_SPEC_BYTES = 1_000_000
MAX_NODES = 100_000
MAX_DEPTH = 64


@dataclass(frozen=True)
class Mark:
    """A 1-based position in the source file."""

    line: int
    col: int


@dataclass
class SourceMap:
    """Positions of keys and values by JSON path, for pointing problems at the right spot."""

    file: str
    values: dict[JsonPath, Mark] = field(default_factory=dict)
    keys: dict[JsonPath, Mark] = field(default_factory=dict)
    origins: dict[JsonPath, tuple[JsonPath, ...]] = field(default_factory=dict)

    def add_origins(self, sources: dict[JsonPath, tuple[JsonPath, ...]]) -> None:
        """Record, for derived values, the written fields they come from (through other derived ones)."""

        def written(path: JsonPath) -> tuple[JsonPath, ...]:
            if path in self.values or path not in sources:
                return (path,)
            return tuple(dict.fromkeys(root for src in sources[path] for root in written(src)))

        for path in sources:
            self.origins[path] = written(path)

    def __contains__(self, path: JsonPath) -> bool:
        return path in self.values

    def locate(self, path: JsonPath, *, key: bool = False) -> Mark:
        """Where `path` is written (its key when `key`), or derived from, or its nearest ancestor."""
        if key and path in self.keys:
            return self.keys[path]
        if path not in self.values and self.origins.get(path):
            return self.locate(self.origins[path][0])
        for end in range(len(path), -1, -1):
            mark = self.values.get(path[:end])
            if mark:
                return mark
        return Mark(1, 1)

    def problem(self, path: JsonPath, message: str, *, key: bool = False, **kw: object) -> Problem:
        """A problem located at `path`."""
        mark = self.locate(path, key=key)
        return Problem(message, path=path, file=self.file, line=mark.line, col=mark.col, **kw)  # type: ignore[arg-type]


class YamlSourceError(Exception):
    """The text is not a YAML document we can read; `problems` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].message)
        self.problems = problems


def _mark(node_mark: Any) -> Mark:
    """A 1-based Mark from PyYAML's 0-based one (pure-Python or libyaml flavour)."""
    return Mark(node_mark.line + 1, node_mark.column + 1) if node_mark else Mark(1, 1)


def _yaml_hint(problem_text: str) -> str | None:
    if "\\t" in problem_text or "tab" in problem_text:
        return "YAML does not allow tabs for indentation; indent with spaces"
    if "mapping values are not allowed" in problem_text:
        return "a value containing ': ' must be quoted, or the indentation of this line is off"
    if "could not find expected ':'" in problem_text:
        return "each line of a mapping needs `key: value`; this line lacks the ':'"
    if "found character '@'" in problem_text or "found character '`'" in problem_text:
        return "values starting with @ or ` must be quoted"
    return None


def _expanded_size(root: yaml.Node, file: str) -> int:
    """Count nodes as if aliases were copied, refusing cycles and excessive depth."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise YamlSourceError([_at(node, file, f"the document nests deeper than {MAX_DEPTH} levels")])
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in in_progress:
            raise YamlSourceError([_at(node, file, "a recursive alias refers to its own anchor")])
        in_progress.add(id(node))
        total = 1
        for child in _children(node):
            total += size(child, depth + 1)
            if total > MAX_NODES:  # reported at the innermost value whose expansion crossed the cap
                raise YamlSourceError(
                    [_at(node, file, f"the document has more than {MAX_NODES} values once aliases expand")]
                )
        in_progress.discard(id(node))
        sizes[id(node)] = total
        return total

    return size(root, 0)


def _check_depth(text: str, file: str) -> None:
    """Refuse deep nesting from the event stream, before anything recursive builds nodes."""
    depth = -1  # the outermost collection is level 0, as in _expanded_size
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = _mark(event.start_mark)
                raise YamlSourceError(
                    [
                        Problem(
                            f"the document nests deeper than {MAX_DEPTH} levels",
                            file=file,
                            line=mark.line,
                            col=mark.col,
                            code="yaml",
                        )
                    ]
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


# Errors PyYAML reports where it gave up (often the end of the file); the construct they name
# starts at the context mark, which is where the mistake is.
_OPENED_AT_CONTEXT = ("while scanning a quoted scalar", "while scanning a simple key", "while parsing a flow")
_STR_TAG = "tag:yaml.org,2002:str"
_FLOAT_TAG = "tag:yaml.org,2002:float"


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def _at(node: yaml.Node, file: str, message: str, *, code: str = "yaml", **kw: object) -> Problem:
    mark = _mark(node.start_mark)
    return Problem(message, file=file, line=mark.line, col=mark.col, code=code, **kw)  # type: ignore[arg-type]


def _index(node: yaml.Node, path: JsonPath, smap: SourceMap, problems: list[Problem]) -> None:
    """Record positions of every path under `node`, and report duplicate keys."""
    smap.values.setdefault(path, _mark(node.start_mark))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            name = key_node.value
            if key_node.tag != _STR_TAG:
                problems.append(
                    _at(
                        key_node,
                        smap.file,
                        f"the key {show_value(name)} is not text",
                        code="key_not_text",
                        hint="YAML reads unquoted numbers, ~, null, yes/no/on/off as other types: quote the key",
                        path=(*path, name),
                    )
                )
                continue
            if name in seen:
                first = _mark(seen[name].start_mark)
                problems.append(
                    _at(
                        key_node,
                        smap.file,
                        f"duplicate key {show_value(name)}",
                        code="duplicate_key",
                        hint=f"{show_value(name)} is already set at line {first.line}; YAML keeps only the last one, "
                        "so merge the two",
                        path=(*path, name),
                    )
                )
                continue
            seen[name] = key_node
            smap.keys[(*path, name)] = _mark(key_node.start_mark)
            _index(value_node, (*path, name), smap, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), smap, problems)
    elif node.tag == _FLOAT_TAG and node.value.lower().lstrip("+-") in (".nan", ".inf"):
        problems.append(
            _at(
                node,
                smap.file,
                "not a finite number (NaN or infinity)",
                code="not_finite",
                path=path,
                found=node.value,
                hint="every number in the spec must be finite",
            )
        )


def parse_yaml(text: str, file: str) -> tuple[object, SourceMap]:
    """Parse one YAML document into data and its source map.

    Raises:
        YamlSourceError: the text is not one readable YAML document, or exceeds the bounds.
    """
    smap = SourceMap(file)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise YamlSourceError([Problem(f"the file is larger than {MAX_SPEC_BYTES} bytes", file=file, code="too_large")])
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # the reader checks for control characters right here
        _check_depth(text, file)
        node = loader.get_single_node()
        if node is None:
            return None, smap
        _expanded_size(node, file)
        problems: list[Problem] = []
        _index(node, (), smap, problems)
        if problems:
            raise YamlSourceError(problems)
        return loader.construct_document(node), smap
    except yaml.MarkedYAMLError as exc:
        opened = exc.context_mark and (exc.context or "").startswith(_OPENED_AT_CONTEXT)
        mark = _mark(exc.context_mark if opened else (exc.problem_mark or exc.context_mark))
        what = " ".join(filter(None, [exc.context, exc.problem]))
        raise YamlSourceError(
            [
                Problem(
                    f"YAML syntax: {what}", file=file, line=mark.line, col=mark.col, code="yaml", hint=_yaml_hint(what)
                )
            ]
        ) from None
    except yaml.reader.ReaderError as exc:  # a control character; it carries an offset, not a mark
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise YamlSourceError(
            [
                Problem(
                    f"YAML: character U+{exc.character:04X} is not allowed in a YAML file",
                    file=file,
                    line=line,
                    col=col,
                    code="yaml",
                    hint="remove the control character or quote-escape it",
                )
            ]
        ) from None
    except RecursionError:
        raise YamlSourceError(
            [Problem(f"the document nests deeper than {MAX_DEPTH} levels", file=file, code="yaml")]
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
