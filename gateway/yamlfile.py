"""Strict YAML files: decode into msgspec Structs, and name file, line and field in every error.

PyYAML gives us the node tree with line marks; msgspec does the typed, strict conversion. When
msgspec rejects a value it names the field's path (``$.upstreams[0].url``); we walk the node tree
along that path to find the line the user has to fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import yaml

T = TypeVar("T")

_PATH_RE = re.compile(r"at `\$([^`]*)`")
_STEP_RE = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


class ConfigError(ValueError):
    """A file that does not validate. ``str()`` reads ``file:line: field: what is wrong``."""

    def __init__(self, file: str, line: int | None, field: str | None, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps YAML 1.1 quirks out: `no`/`on` stay strings (country NO!)."""


# YAML 1.1 reads NO (Norway), ON, YES as booleans; country codes must stay strings.
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _node_at(node: yaml.Node, path: str) -> yaml.Node:
    """The deepest node along a msgspec error path; the mapping key node when a field is unknown."""
    for key, index in _STEP_RE.findall(path):
        if key and isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    node = v
                    break
            else:
                return node
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
        else:
            return node
    return node


def _unknown_key_node(node: yaml.Node, key: str) -> yaml.Node:
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if k.value == key:
                return k
    return node


def load_text(text: str, type_: type[T], file: str = "<string>") -> T:
    """Parse YAML text and convert it, strictly, into ``type_``; raise ConfigError with a line."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(file, mark.line + 1 if mark else None, None, f"not valid YAML: {getattr(e, 'problem', e)}") from None
    if node is None:
        raise ConfigError(file, 1, None, "the file is empty")
    try:
        return msgspec.convert(data, type_, strict=True)
    except msgspec.ValidationError as e:
        msg = str(e)
        m = _PATH_RE.search(msg)
        path = m.group(1) if m else ""
        target = _node_at(node, path)
        field = path.lstrip(".") or None
        unknown = re.match(r"Object contains unknown field `([^`]+)`", msg)
        if unknown:
            target = _unknown_key_node(target, unknown.group(1))
            field = f"{field}.{unknown.group(1)}" if field else unknown.group(1)
            msg = "unknown key"
        else:
            msg = _PATH_RE.sub("", msg).strip(" -")
        raise ConfigError(file, target.start_mark.line + 1, field, msg) from None


def locate(text: str, field: str) -> int | None:
    """The line of ``field`` (``upstreams[1].url``) in YAML ``text``, for checks made after decoding."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    return _node_at(node, "." + field).start_mark.line + 1 if node is not None else None


def load_file(path: str | Path, type_: type[T]) -> T:
    """Read a YAML file and convert it strictly into ``type_``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(str(p), None, None, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError:  # a binary file or another encoding: the same words as for a policy file
        raise ConfigError(str(p), None, None, "not UTF-8") from None
    return load_text(text, type_, str(p))
