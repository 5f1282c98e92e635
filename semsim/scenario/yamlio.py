"""Reading scenario files: bounded, unambiguous YAML (:func:`read_yaml`, :func:`parse_yaml`) and
plain data (:func:`check_plain`). Every problem is a one-line :class:`~semsim.errors.ConfigError`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError


#: a scenario file above this size is refused (the shipped ones are under 4 KiB)
MAX_SCENARIO_BYTES = 1 << 20
#: values (scalars, lists, mappings) a scenario may hold once YAML aliases are expanded; a few
#: hundred bytes of nested aliases would otherwise expand to millions
MAX_VALUES = 10_000
#: characters in one string (``description`` included)
MAX_TEXT_CHARS = 10_000
#: nesting depth of lists and mappings
MAX_DEPTH = 32
_PLAIN = (str, int, float, bool, type(None), list, tuple, dict, os.PathLike)


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses duplicate and non-string keys (naming the line) and
    documents whose aliases expand beyond :data:`MAX_VALUES` values (or refer to themselves)."""

    def compose_document(self):
        node = super().compose_document()
        _check_expansion(node)
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
                if not isinstance(key, str):
                    raise ConfigError(f"key {key!r} at line {line} must be a string")
                if key in seen:
                    raise ConfigError(f"duplicate key {key!r} at line {line} (first at line {seen[key]}); "
                                      f"each key may appear once")
                seen[key] = line
        return super().construct_mapping(node, deep)


def _check_expansion(root: yaml.Node) -> None:
    """Count the values ``root`` stands for with aliases expanded, without expanding them."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    aliased = False
    while stack:
        node, depth = stack[-1]
        if depth > MAX_DEPTH:
            raise ConfigError(f"lists and mappings nest deeper than {MAX_DEPTH} levels "
                              f"(line {node.start_mark.line + 1})")
        children = (node.value if isinstance(node, yaml.SequenceNode) else
                    [n for kv in node.value for n in kv] if isinstance(node, yaml.MappingNode) else [])
        if id(node) not in open_:
            open_.add(id(node))
            todo = [c for c in children if id(c) not in size]
            if any(id(c) in open_ for c in todo):
                raise ConfigError(f"an alias at line {node.start_mark.line + 1} refers to the value that holds it")
            aliased = aliased or len(todo) < len(children)
            stack.extend((c, depth + 1) for c in todo)
            continue
        stack.pop()
        if id(node) in size:
            continue
        n = size[id(node)] = 1 + sum(size[id(c)] for c in children)
        aliased = aliased or len({id(c) for c in children}) < len(children)
        if n > MAX_VALUES:
            why = " once its aliases are expanded" if aliased else ""
            raise ConfigError(f"the document holds more than {MAX_VALUES} values{why}; a scenario is small")


def parse_yaml(text: str, what: str) -> Any:
    """Parse YAML ``text`` with the strict loader; :class:`ConfigError` (one line, naming ``what``
    and the line) on any problem."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except ConfigError as e:
        raise ConfigError(f"{what}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{what} is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{what}: lists and mappings nest too deeply") from None


def read_yaml(path: Path, what: str = "scenario") -> Any:
    """Read a YAML file: a file (not a folder) of at most :data:`MAX_SCENARIO_BYTES`, UTF-8 text,
    parsed by :func:`parse_yaml`."""
    label = f"{what} {str(path)!r}"
    if path.is_dir():
        raise ConfigError(f"{label} is a folder, not a {what} file")
    if not path.is_file():
        raise ConfigError(f"{what} file {str(path)!r} not found")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SCENARIO_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read {label}: {e.strerror or e}") from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise ConfigError(f"{label} is larger than {MAX_SCENARIO_BYTES // 1024} KiB; a {what} file is small")
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise ConfigError(f"{label} is UTF-32 text; save it as UTF-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{label} is UTF-16 text; save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(f"{label} is not UTF-8 text (byte 0x{data[e.start]:02x} at line {line}); "
                          f"save it as UTF-8") from None
    return parse_yaml(text, label)


def check_plain(value: Any, where: str) -> None:
    """Every value is plain data (strings, numbers, booleans, null, lists, mappings with string
    keys), strings are at most :data:`MAX_TEXT_CHARS` long, and there are at most
    :data:`MAX_VALUES` values in all."""
    stack, count = [(value, where)], 0
    while stack:
        v, at = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(f"{where} holds more than {MAX_VALUES} values; a scenario is small")
        if not isinstance(v, _PLAIN):
            raise ConfigError(f"{at} must be a string, number, boolean, list or mapping, got {type(v).__name__} "
                              f"{str(v)[:60]!r}")
        if isinstance(v, str) and len(v) > MAX_TEXT_CHARS:
            raise ConfigError(f"{at} is {len(v)} characters long; at most {MAX_TEXT_CHARS} are allowed")
        if isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str):
                    raise ConfigError(f"{at}: key {k!r} must be a string")
                stack.append((item, f"{at}.{k}" if at != "scenario" else k))
        elif isinstance(v, (list, tuple)):
            stack.extend((item, f"{at}[{i}]") for i, item in enumerate(v))


