"""The unit of inspection: a piece of text in the request body and where it sits."""

from __future__ import annotations

from typing import NamedTuple


class Segment(NamedTuple):
    """One text value of a request body that must be inspected."""

    path: tuple
    """JSON path into the parsed body, e.g. ``("messages", 1, "content")``."""
    text: str
    kind: str
    """What the text is: ``message``, ``system``, ``tool_definition``, ``tool_result``,
    ``tool_arguments``, ``input`` (embeddings/completions/responses), ``other``; ``key``: the name of
    a member of an object whose keys the caller chooses (``metadata``, a field the gateway does not
    know, a schema's property names), ``path`` ending with that very name. A provider receives such a
    name as it receives a value, so it is inspected like one; ``write_segments`` renames the member."""

    @property
    def where(self) -> str:
        """The path as users read it: ``messages[1].content``."""
        out = ""
        for p in self.path:
            out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
        return out
