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

_PATH_RE = re.compile(r"at `(?:key` in `)?\$([^`]*)`")
_STEP_RE = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_ENTRY = "[...]"
"""How msgspec writes a step into a dict's entry in an error path: it does not say which key."""


class ConfigError(ValueError):
    """A file that does not validate. ``str()`` reads ``file:line: field: what is wrong``."""

    def __init__(self, file: str, line: int | None, field: str | None, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class _NoDuplicateKeys:
    """A mapping with the same key twice is an error: YAML would keep the last silently, and the
    first (a second `auth:`, a rule list) would be ignored without a word. (``load_text`` names the
    field; this also stops loaders that do not go through it, such as the policies' libyaml pass.)"""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, yaml.Node] = {}
            for k, _ in node.value:
                if not isinstance(k, yaml.ScalarNode) or k.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` merges; keys written next to it override it, as meant
                if k.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {k.value!r} (first on line {seen[k.value].start_mark.line + 1})",
                        k.start_mark)
                seen[k.value] = k
        return super().construct_mapping(node, deep)


class _Loader(_NoDuplicateKeys, yaml.SafeLoader):
    """SafeLoader that keeps YAML 1.1 quirks out: `no`/`on` stay strings (country NO!), and refuses
    duplicate keys."""


# YAML 1.1 reads NO (Norway), ON, YES as booleans; country codes must stay strings.
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _node_at(node: yaml.Node, path: str | list[tuple[str, str]]) -> yaml.Node:
    """The deepest node along a msgspec error path (or its steps, see ``_steps``)."""
    for key, index in _STEP_RE.findall(path) if isinstance(path, str) else path:
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


def _check_duplicate_keys(node: yaml.Node | None, file: str, path: str = "", seen_nodes: set | None = None) -> None:
    """ConfigError at the second of two equal keys in a mapping (YAML would keep the last silently)."""
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:  # an alias: checked where its anchor is (and it may contain itself)
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, file, f"{path}[{i}]", seen_nodes)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                field = f"{path}.{k.value}" if path else k.value
                if k.value in seen:
                    raise ConfigError(file, k.start_mark.line + 1, field,
                                      f"duplicate key (first on line {seen[k.value].start_mark.line + 1})")
                seen[k.value] = k
                _check_duplicate_keys(v, file, field, seen_nodes)


def _unknown_key_node(node: yaml.Node, key: str) -> yaml.Node:
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if k.value == key:
                return k
    return node


def _steps(data: Any, type_: type, path: str) -> list[tuple[str, str]]:
    """The (key, index) steps of a msgspec error path, with the key of each dict entry found.

    msgspec writes ``$.models[...][0].model`` for a bad value inside a dict: that names neither the
    entry nor its line. Converting again with that dict cut down to one entry at a time finds it (the
    first entry whose conversion fails at the same place); it runs only on an error."""
    steps: list[tuple[str, str]] = []
    rest = path
    while True:
        head, sep, rest = rest.partition(_ENTRY)
        steps += _STEP_RE.findall(head)
        if not sep:
            return steps
        at = data
        for key, index in steps:
            at = at.get(key) if isinstance(at, dict) else at[int(index)] if isinstance(at, list) else None
        found = None
        for entry in at if isinstance(at, dict) else ():
            try:
                msgspec.convert(_cut(data, steps, entry), type_, strict=True)
            except msgspec.ValidationError as e:
                m = _PATH_RE.search(str(e))
                if m and m.group(1).startswith(_path(steps) + _ENTRY):
                    found = entry
                    break
        if found is None:
            return steps
        steps.append((str(found), ""))


def _cut(data: Any, steps: list[tuple[str, str]], entry: Any) -> Any:
    """A copy of ``data`` in which the dict at ``steps`` holds only ``entry``."""
    if not steps:
        return {entry: data[entry]}
    (key, index), rest = steps[0], steps[1:]
    if key:
        return {**data, key: _cut(data[key], rest, entry)}
    out = list(data)
    out[int(index)] = _cut(data[int(index)], rest, entry)
    return out


def _path(steps: list[tuple[str, str]]) -> str:
    return "".join(f".{key}" if key else f"[{index}]" for key, index in steps)


def load_text(text: str, type_: type[T], file: str = "<string>") -> T:
    """Parse YAML text and convert it, strictly, into ``type_``; raise ConfigError with a line."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        _check_duplicate_keys(node, file)
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
        steps = _steps(data, type_, m.group(1)) if m else []
        target = _node_at(node, steps)
        field = _path(steps).lstrip(".") or None
        unknown = re.match(r"Object contains unknown field `([^`]+)`", msg)
        if unknown:
            target = _unknown_key_node(target, unknown.group(1))
            field = f"{field}.{unknown.group(1)}" if field else unknown.group(1)
            msg = "unknown key"
        else:
            msg = _PATH_RE.sub("", msg).strip(" -") + (" (a key)" if "at `key` in" in str(e) else "")
        raise ConfigError(file, target.start_mark.line + 1, field, msg) from None


def locate(text: str, field: str) -> int | None:
    """The line of ``field`` (``upstreams[1].url``) in YAML ``text``, for checks made after decoding.

    A key may hold dots itself (the model ``gpt-4.1``): at each mapping the longest key that the rest
    of the field starts with is taken."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    rest = field
    while rest:
        if isinstance(node, yaml.MappingNode):
            name = rest.lstrip(".")
            keys = [(k, v) for k, v in node.value if isinstance(k.value, str) and name.startswith(k.value)
                    and name[len(k.value):len(k.value) + 1] in ("", ".", "[")]
            if not keys:
                break
            k, node = max(keys, key=lambda kv: len(kv[0].value))
            rest = name[len(k.value):]
        elif isinstance(node, yaml.SequenceNode) and (m := re.match(r"\[(\d+)\]", rest)) \
                and int(m.group(1)) < len(node.value):
            node, rest = node.value[int(m.group(1))], rest[m.end():]
        else:
            break
    return node.start_mark.line + 1


def load_file(path: str | Path, type_: type[T]) -> T:
    """Read a YAML file and convert it strictly into ``type_``."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(str(p), None, None, f"cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:  # (a traceback otherwise)
        raise ConfigError(str(p), raw.count(b"\n", 0, e.start) + 1, None, "not UTF-8") from None
    return load_text(text, type_, str(p))
