"""Load ``policies/`` and ``policies/regional/`` strictly; every error names file, line and field.

Beyond the per-field checks the Structs make, the loader checks what spans a file or files: the file
name matches the jurisdiction, rule ids are unique and carry their jurisdiction's prefix, a detector a
rule names exists, no country is both adequate and prohibited, agreement ids are unique. Test files (``*_test.yaml``) are not policies;
``load_cases`` reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import msgspec
import yaml

from gateway.inspect.detectors import BY_ID
from gateway.policy.builtin import builtin_policy
from gateway.policy.model import Agreement, CaseFile, Policy
from gateway.yamlfile import ConfigError, _Loader, _NoDuplicateKeys, _node_at, load_text

if getattr(yaml, "__with_libyaml__", False):
    class _FastLoader(_NoDuplicateKeys, yaml.CSafeLoader):
        """libyaml with the same resolvers as gateway.yamlfile (``NO`` stays a country), and no duplicate keys."""

    _FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
else:  # pragma: no cover - PyYAML without libyaml
    _FastLoader = None  # type: ignore[assignment,misc]


def _convert(text: str, type_, file: str):
    """Decode ``text`` into ``type_``. Valid files take one libyaml pass; a file that fails is decoded
    again by gateway.yamlfile, which names the line (loading all policies is ~10x faster this way)."""
    if _FastLoader is not None:
        try:
            return msgspec.convert(yaml.load(text, Loader=_FastLoader), type_, strict=True)
        except (yaml.YAMLError, msgspec.ValidationError):
            pass
    return load_text(text, type_, file)


class PolicySet:
    """Every loaded policy and agreement, with the lookups ``decide`` needs precomputed.

    Immutable by convention: a reload builds a new PolicySet.
    """

    def __init__(self, policies: Iterable[Policy], agreements: Iterable[Agreement], revision: str):
        self.jurisdictions: dict[str, Policy] = {p.jurisdiction: p for p in policies}
        """Jurisdiction code -> its policy (only those with a file)."""
        self.agreements: list[Agreement] = list(agreements)
        self.revision = revision
        """SHA-256 (first 16 hex) of the loaded files' names and bytes; every decision carries it."""
        # (policy jurisdiction, destination) -> categories an agreement makes adequate
        self.regional: dict[tuple[str, str], frozenset[str]] = {}
        for a in self.agreements:
            for j in a.members:
                for r in a.members:
                    if j != r:
                        key = (j, r)
                        self.regional[key] = self.regional.get(key, frozenset()) | frozenset(a.covers)
        self._builtin: dict[str, Policy] = {}
        self.memo: dict[tuple, tuple[str, str]] = {}
        """The engine's cache of (jurisdiction, finding, residency, level) -> (action, rule id)."""
        self.eval_memo: dict[tuple, tuple] = {}
        """The engine's per-candidate evaluations (see ``engine._evaluate``)."""
        self.clean_memo: dict[tuple[str, str, int], list[str]] = {}
        """The engine's request-wide blockers of (caller, residency, level), for requests without
        findings (see ``engine._decide_clean``)."""

    def policy(self, jurisdiction: str) -> Policy:
        """The policy of ``jurisdiction``: its file, or the protective built-in default when it has none."""
        p = self.jurisdictions.get(jurisdiction)
        if p is None:
            p = self._builtin.get(jurisdiction)
            if p is None:
                p = self._builtin[jurisdiction] = builtin_policy(jurisdiction)
        return p

    def agreements_between(self, a: str, b: str) -> list[Agreement]:
        """The agreements both countries belong to."""
        return [x for x in self.agreements if a in x.members and b in x.members]


DETECTOR_IDS: frozenset[str] = frozenset(BY_ID) | {"intl.uninspectable"}
"""Detector ids a rule may name: the inspector's catalogue, and the finding the proxy makes of content
it cannot inspect. Any other id has a valid shape but could never match (a typo, a silently dead rule)."""


def _line(text: str, path: str) -> int | None:
    try:
        return _node_at(yaml.compose(text, Loader=_Loader), path).start_mark.line + 1
    except (yaml.YAMLError, AttributeError):
        return None


def _policy_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if not p.name.endswith("_test.yaml"))


def _agreement_files(directory: Path) -> list[Path]:
    d = directory / "regional"
    return sorted(p for p in d.glob("*.yaml") if not p.name.endswith("_test.yaml")) if d.is_dir() else []


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(str(path), None, None, f"cannot read: {e.strerror}") from None


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, None, "not UTF-8") from None


def _check_policy(p: Policy, file: str, text: str, seen_rules: dict[str, str]) -> None:
    stem = Path(file).stem
    if stem.upper() != p.jurisdiction:
        raise ConfigError(file, _line(text, ".jurisdiction"), "jurisdiction",
                          f"{p.jurisdiction} does not match the file name (expected {stem.upper()})")
    both = set(p.adequate) & set(p.prohibited)
    if both:
        raise ConfigError(file, _line(text, ".prohibited"), "prohibited",
                          f"{', '.join(sorted(both))} is also listed as adequate")
    if p.jurisdiction in p.adequate or p.jurisdiction in p.prohibited:
        raise ConfigError(file, _line(text, ".adequate"), "adequate", "a jurisdiction cannot list itself")
    prefix = p.jurisdiction.lower() + "."
    for i, r in enumerate(p.rules):
        where = f".rules[{i}].id"
        if not r.id.startswith(prefix):
            raise ConfigError(file, _line(text, where), where[1:], f"rule id {r.id!r} must start with {prefix!r}")
        if r.id in seen_rules or r.id == prefix + "default" or r.id == prefix + "prohibited":
            other = seen_rules.get(r.id, "reserved for the engine")
            raise ConfigError(file, _line(text, where), where[1:], f"duplicate rule id {r.id!r} ({other})")
        seen_rules[r.id] = file
        for j, det in enumerate(r.match.detectors):
            if det not in DETECTOR_IDS:
                where = f".rules[{i}].match.detectors[{j}]"
                raise ConfigError(file, _line(text, where), where[1:], f"unknown detector {det!r}: no finding has this id")


def load_policies(directory: str | Path) -> PolicySet:
    """Load every policy and regional agreement under ``directory``; raise ConfigError on any problem.

    A folder without a single policy file is an error too: a gateway must not start with nothing but
    built-in defaults because of a wrong path.
    """
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(str(d), None, None, "policy folder not found")
    digest = hashlib.sha256()
    policies: list[Policy] = []
    seen_rules: dict[str, str] = {}
    files = _policy_files(d)
    if not files:
        raise ConfigError(str(d), None, None, "no policy files (<cc>.yaml) in this folder")
    for path in files:
        raw = _read(path)
        digest.update(path.name.encode() + b"\0" + raw + b"\0")
        text = _decode(path, raw)
        p = _convert(text, Policy, str(path))
        _check_policy(p, str(path), text, seen_rules)
        policies.append(p)
    agreements: list[Agreement] = []
    ids: set[str] = set()
    for path in _agreement_files(d):
        raw = _read(path)
        digest.update(b"regional/" + path.name.encode() + b"\0" + raw + b"\0")
        text = _decode(path, raw)
        a = _convert(text, Agreement, str(path))
        if a.agreement in ids:
            raise ConfigError(str(path), _line(text, ".agreement"), "agreement", f"duplicate agreement {a.agreement!r}")
        if len(set(a.members)) < 2:
            raise ConfigError(str(path), _line(text, ".members"), "members", "an agreement needs at least two members")
        ids.add(a.agreement)
        agreements.append(a)
    return PolicySet(policies, agreements, digest.hexdigest()[:16])


def case_files(directory: str | Path) -> list[Path]:
    """Every ``*_test.yaml`` beside the policies and the regional agreements."""
    d = Path(directory)
    return sorted(d.glob("*_test.yaml")) + sorted((d / "regional").glob("*_test.yaml"))


def load_cases(path: str | Path) -> CaseFile:
    """Read one test file strictly."""
    return _convert(_decode(Path(path), _read(Path(path))), CaseFile, str(path))


def _ignored_files(directory: Path) -> list[Path]:
    """YAML files the loader passes over for their extension (``ar.yml``, ``br.YAML``): without a word
    from ``policy check`` the gateway would decide for that country by the built-in default."""
    out = []
    for d in (directory, directory / "regional"):
        if d.is_dir():
            out += sorted(p for p in d.iterdir()
                          if p.suffix.lower() in (".yml", ".yaml") and p.suffix != ".yaml" and p.is_file())
    return out


def check_directory(directory: str | Path) -> tuple[PolicySet | None, list[ConfigError]]:
    """Validate every policy, agreement and test file under ``directory``; collect every error.

    Each file is checked on its own first (so one bad file does not hide the others), then the set as a
    whole (duplicate rule ids across files and the like).
    """
    d = Path(directory)
    if not d.is_dir():
        return None, [ConfigError(str(d), None, None, "policy folder not found")]
    errors: list[ConfigError] = []
    for path in _ignored_files(d):
        errors.append(ConfigError(str(path), None, None, "not loaded: policy, agreement and test files end in .yaml"))
    seen_rules: dict[str, str] = {}
    for path in _policy_files(d):
        try:
            text = _decode(path, _read(path))
            _check_policy(_convert(text, Policy, str(path)), str(path), text, seen_rules)
        except ConfigError as e:
            errors.append(e)
    for path in _agreement_files(d):
        try:
            _convert(_decode(path, _read(path)), Agreement, str(path))
        except ConfigError as e:
            errors.append(e)
    for path in case_files(d):
        try:
            load_cases(path)
        except ConfigError as e:
            errors.append(e)
    if errors:
        return None, errors
    try:
        return load_policies(d), []
    except ConfigError as e:
        return None, [e]
