"""The shapes of policy files (SPEC section 7): national policies, regional agreements, test cases.

Every Struct is frozen and rejects unknown keys; enumerations (actions, categories, levels) and code
shapes (ISO 3166-1 alpha-2, detector ids) are typed, so a misspelling is an error that names file,
line and field at load time, never a silent no-match at request time.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Action = Literal["allow", "encrypt", "pseudonymize", "hash", "redact", "block"]
ACTIONS: tuple[str, ...] = ("allow", "encrypt", "pseudonymize", "hash", "redact", "block")
"""Actions from least to most strict; the strictest applicable one wins."""

Category = Literal["national_id", "tax_id", "health_id", "contact", "financial", "credentials",
                   "gov_classified", "health", "network", "uninspectable"]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]

Level = Literal["public", "internal", "confidential", "restricted", "secret"]
LEVELS: tuple[str, ...] = ("public", "internal", "confidential", "restricted", "secret")
"""Classification levels from lowest to highest."""

Destination = Literal["domestic", "adequate", "foreign", "prohibited"]

Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
DetectorId = Annotated[str, msgspec.Meta(pattern=r"^[a-z]+\.[a-z0-9_]+$")]
RuleId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$")]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class Law(_Strict, kw_only=True):
    """A legal instrument a policy rests on."""

    name: str
    """Its citation, e.g. ``LGPD, Lei 13.709/2018``."""
    articles: str = ""
    """The articles that matter for residency, e.g. ``art. 33-36``."""
    url: str | None = None
    """Where the text is published."""


class Match(_Strict, kw_only=True):
    """Which findings a rule applies to.

    ``categories`` and ``detectors`` say *what* (a finding matches when its category or its detector is
    named; when neither is named every finding matches); ``subject_countries`` and ``min_level`` narrow
    that further. A rule that names no categories, detectors or subject countries also applies to the
    request as a whole: if it blocks a destination, the destination is blocked even when nothing was
    found (that is how a level such as ``secret`` keeps a whole request at home).
    """

    categories: list[Category] = []
    detectors: list[DetectorId] = []
    subject_countries: list[Country] = []
    """Only findings whose data subject is from one of these countries."""
    min_level: Level | None = None
    """Only requests classified at this level or above."""


class Rule(_Strict, kw_only=True):
    """One rule: what to do to matching findings for each class of destination.

    A destination on the policy's ``prohibited`` list receives nothing; no rule can allow it.
    """

    id: RuleId
    """Unique across all policies, prefixed with the jurisdiction: ``br.identifiers``."""
    title: str = ""
    basis: str = ""
    """Legal basis: the law and article this rule implements."""
    match: Match = Match()
    domestic: Action
    """Upstream residency is the policy's own jurisdiction."""
    adequate: Action
    """Upstream residency is on the adequacy list, or shares a regional agreement that covers the category."""
    foreign: Action
    """Any other upstream residency."""


class Default(_Strict, kw_only=True):
    """What happens to findings that no rule matches."""

    domestic: Action = "allow"
    adequate: Action = "pseudonymize"
    foreign: Action = "pseudonymize"


class Policy(_Strict, kw_only=True):
    """A national residency policy (``policies/<cc>.yaml``)."""

    jurisdiction: Country
    name: str
    law: list[Law]
    regulator: str
    version: str
    """Date of the facts this file encodes, ``YYYY-MM-DD``."""
    adequate: list[Country] = []
    """Destinations the law treats as adequate (what a gateway can know from a residency code)."""
    prohibited: list[Country] = []
    """Destinations that may receive no request at all while this policy applies."""
    rules: list[Rule]
    default: Default = Default()
    uncertain: list[str] = []
    """Facts that could not be verified; the rules take the protective reading of each."""
    notes: list[str] = []


class Agreement(_Strict, kw_only=True):
    """A regional agreement (``policies/regional/<name>.yaml``) that widens ``adequate`` for members."""

    agreement: str
    """Short id, e.g. ``mercosur``."""
    name: str = ""
    law: list[Law] = []
    members: list[Country]
    """Current members; suspended members are left out."""
    covers: list[Category]
    """Categories whose transfer among members counts as ``adequate``."""
    version: str = ""
    uncertain: list[str] = []
    notes: list[str] = []


# -- test cases (policies/<cc>_test.yaml, policies/regional/<name>_test.yaml) --

class CaseFinding(_Strict, kw_only=True):
    """A finding as the inspector would report it (offsets do not matter to policy)."""

    detector: DetectorId
    category: Category
    country: Country | None = None


class CaseCandidate(_Strict, kw_only=True):
    """An entry of the requested model's list: upstream name and its residency."""

    upstream: str
    residency: Country | None
    healthy: bool = True


class Expect(_Strict, kw_only=True):
    """What ``decide`` must return. Fields left out are not checked."""

    outcome: Literal["route", "blocked", "unavailable"]
    route: str | None = None
    destination: Destination | None = None
    actions: dict[str, Action] | None = None
    """Detector id -> strictest action applied to it (``Decision.by_detector``), compared exactly."""
    rules: list[RuleId] | None = None
    """Rule ids of the decision, compared as a set."""
    blocked_by: list[RuleId] | None = None
    """Rule ids that blocked, compared as a set."""
    applied: list[Country] | None = None
    """Jurisdictions whose policies applied, compared as a set."""


class Case(_Strict, kw_only=True):
    """One table row: a request and the decision it must get."""

    name: str
    principal: Country
    """The caller's jurisdiction."""
    level: Level = "internal"
    findings: list[CaseFinding] = []
    candidates: list[CaseCandidate]
    expect: Expect


class CaseFile(_Strict, kw_only=True):
    """A ``*_test.yaml`` file."""

    cases: list[Case]
