"""Plugins: objects found through the ``soberana.plugins`` entry-point group.

A package declares, in its pyproject.toml::

    [project.entry-points."soberana.plugins"]
    my_plugin = "my_package.module:plugin"

and ``module.plugin`` is a ``Plugin`` (or any object with the same attributes). What a plugin may
provide is named by attributes; today the gateway reads ``rate_limit_backends``. Loading is
all-or-nothing: a plugin that is installed but fails to import, or is not a plugin, raises
``PluginError`` at startup rather than being skipped (fail closed: a silently missing plugin could
be a missing limit or detector).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from gateway.yamlfile import ConfigError

GROUP = "soberana.plugins"


class PluginError(RuntimeError):
    """An installed plugin cannot be used; the gateway must not start without it."""


@dataclass(frozen=True)
class Plugin:
    """What a plugin offers. Every capability is optional."""

    name: str
    """Shown in errors and logs."""
    rate_limit_backends: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    """``rate_limit.backend`` name → factory taking the ``RateLimit`` config, returning a backend with
    ``async hit(buckets, window) -> float | None`` and ``async close()`` (see gateway.ratelimit)."""


def load_plugins() -> dict[str, object]:
    """Every plugin installed under ``soberana.plugins``, by entry-point name. Raises PluginError."""
    found: dict[str, object] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            raise PluginError(f"plugin {ep.name!r} is installed twice")
        try:
            obj = ep.load()
        except Exception as e:
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}") from e
        backends = getattr(obj, "rate_limit_backends", None)
        if not isinstance(getattr(obj, "name", None), str) or not isinstance(backends, Mapping):
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) is not a gateway.plugins.Plugin")
        found[ep.name] = obj
    return found


def rate_limit_backend(name: str) -> Callable[[Any], Any]:
    """The factory of the rate-limit backend called ``name``; ConfigError if no plugin provides it."""
    providers = [(pname, p.rate_limit_backends[name]) for pname, p in load_plugins().items()
                 if name in p.rate_limit_backends]
    if not providers:
        raise ConfigError("<config>", None, "rate_limit.backend",
                          f"no installed plugin provides the {name!r} backend")
    if len(providers) > 1:
        raise ConfigError("<config>", None, "rate_limit.backend",
                          f"several plugins provide {name!r}: {', '.join(p for p, _ in providers)}")
    return providers[0][1]
