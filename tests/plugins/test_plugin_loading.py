"""Plugin discovery through real entry-point metadata (a .dist-info folder put on sys.path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth.principal import Principal
from gateway.config import RateLimit
from gateway.plugins import Plugin, PluginError, load_plugins
from gateway.ratelimit import RateLimiter
from gateway.yamlfile import ConfigError


def install(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str] | None = None) -> None:
    """What pip would leave behind: a dist-info with METADATA and entry_points.txt, plus modules."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[soberana.plugins]\n{lines}")
    for name, source in (modules or {}).items():
        (root / f"{name}.py").write_text(source)


COUNTING = '''
from gateway.plugins import Plugin

class Counting:
    def __init__(self, cfg):
        self.cfg, self.seen = cfg, []
    async def hit(self, buckets, window):
        self.seen.append([b.name for b in buckets])
        return 42.0 if len(self.seen) > 1 else None
    async def close(self):
        pass

plugin = Plugin(name="counting", rate_limit_backends={"counting": Counting})
'''


def test_the_bundled_redis_plugin_is_found():
    plugins = load_plugins()
    assert isinstance(plugins["redis_ratelimit"], Plugin)
    assert "redis" in plugins["redis_ratelimit"].rate_limit_backends


async def test_a_third_party_backend_is_used_by_name(tmp_path, monkeypatch):
    install(tmp_path, "soberana_counting", {"counting": "sob_counting_mod:plugin"}, {"sob_counting_mod": COUNTING})
    monkeypatch.syspath_prepend(str(tmp_path))
    lim = RateLimiter.from_config(RateLimit(requests_per_minute=5, backend="counting"))
    p = Principal(sub="s", agency="a", jurisdiction="BR")
    assert await lim.check(p) is None and await lim.check(p) == 42.0
    assert lim.backend.seen == [["agency:a:req"], ["agency:a:req"]]


def test_a_plugin_that_fails_to_import_stops_startup(tmp_path, monkeypatch):
    install(tmp_path, "soberana_broken", {"broken": "sob_broken_mod:plugin"},
            {"sob_broken_mod": "raise ImportError('needs libfoo')\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="'broken'.*failed to load: ImportError: needs libfoo"):
        load_plugins()
    # ... even when the configured backend is another plugin's: fail closed, never skip.
    with pytest.raises(PluginError):
        RateLimiter.from_config(RateLimit(requests_per_minute=1, backend="redis", redis_url="redis://127.0.0.1:1/0"))


def test_a_missing_module_or_a_non_plugin_object_is_an_error(tmp_path, monkeypatch):
    install(tmp_path, "soberana_ghost", {"ghost": "sob_no_such_module:plugin"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="'ghost'"):
        load_plugins()


def test_an_object_that_is_not_a_plugin_is_an_error(tmp_path, monkeypatch):
    install(tmp_path, "soberana_odd", {"odd": "sob_odd_mod:plugin"}, {"sob_odd_mod": "plugin = 'just a string'\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="not a gateway.plugins.Plugin"):
        load_plugins()


def test_unknown_backend_names_are_config_errors():
    with pytest.raises(ConfigError, match="no installed plugin provides the 'memcached' backend"):
        RateLimiter.from_config(RateLimit(requests_per_minute=1, backend="memcached"))
