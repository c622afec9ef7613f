"""Run the table tests that sit beside the policies (``<cc>_test.yaml``, ``regional/<name>_test.yaml``).

Used by ``soberana policy test`` and by the pytest suite (one pytest case per file). Besides each case's
expectations, every rule of every jurisdiction must be exercised by at least one case of that
jurisdiction's test file: an untested rule is reported as a failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from gateway.auth.principal import Principal
from gateway.inspect.findings import Finding
from gateway.policy.engine import Candidate, Decision, decide
from gateway.policy.load import PolicySet, case_files, load_cases
from gateway.policy.model import Case


class Failure(NamedTuple):
    """One failed case (or one untested rule): where, which case, what differed."""

    file: str
    case: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.case}: {self.message}"


class FileResult(NamedTuple):
    file: str
    passed: int
    failures: list[Failure]
    rules_seen: set[str]


def run_case(policies: PolicySet, case: Case) -> tuple[Decision, list[str]]:
    """Decide one case; return the decision and what differs from the expectation (empty: passed)."""
    principal = Principal(sub="policy-test", agency="policy-test", jurisdiction=case.principal)
    findings = [Finding(f.detector, f.category, f.country, 0, 0) for f in case.findings]
    candidates = [Candidate(c.upstream, c.residency, "model") for c in case.candidates]
    unhealthy = {c.upstream for c in case.candidates if not c.healthy}
    d = decide(policies, principal, findings, candidates, case.level, healthy=lambda n: n not in unhealthy)
    e = case.expect
    problems: list[str] = []

    def differ(what: str, want, got) -> None:
        problems.append(f"{what}: expected {want}, got {got}")

    if d.outcome != e.outcome:
        differ("outcome", e.outcome, d.outcome)
    route = d.route.upstream if d.route else None
    if e.route is not None and route != e.route:
        differ("route", e.route, route)
    if e.outcome != "route" and route is not None:
        differ("route", None, route)
    if e.destination is not None and d.destination != e.destination:
        differ("destination", e.destination, d.destination)
    if e.actions is not None and d.by_detector != e.actions:
        differ("actions", e.actions, d.by_detector)
    for name, want, got in (("rules", e.rules, d.rules), ("blocked_by", e.blocked_by, d.blocked_by),
                            ("applied", e.applied, d.applied)):
        if want is not None and set(want) != set(got):
            differ(name, sorted(want), sorted(got))
    return d, problems


def run_file(policies: PolicySet, path: str | Path) -> FileResult:
    """Run every case of one test file (raises ConfigError when the file does not validate)."""
    cases = load_cases(path)
    passed, failures, seen = 0, [], set()
    names: set[str] = set()
    for case in cases.cases:
        if case.name in names:
            failures.append(Failure(str(path), case.name, "duplicate case name"))
        names.add(case.name)
        d, problems = run_case(policies, case)
        seen.update(d.rules)
        if problems:
            failures.append(Failure(str(path), case.name, "; ".join(problems)))
        else:
            passed += 1
    return FileResult(str(path), passed, failures, seen)


def untested_rules(policies: PolicySet, jurisdiction: str, seen: set[str], file: str) -> list[Failure]:
    """Rules of ``jurisdiction`` that no case of its test file exercised."""
    p = policies.jurisdictions.get(jurisdiction)
    if p is None:
        return []
    return [Failure(file, r.id, "rule has no test case (no case's decision names it)")
            for r in p.rules if r.id not in seen]


def run_all(policies: PolicySet, directory: str | Path) -> list[FileResult]:
    """Run every test file under ``directory`` and check rule coverage; one result per file.

    A policy without a test file, or an agreement without one, fails as well.
    """
    d = Path(directory)
    results = []
    files = case_files(d)
    have = {f.name for f in files}
    for f in files:
        r = run_file(policies, f)
        if f.parent == d:
            jur = f.name[: -len("_test.yaml")].upper()
            extra = untested_rules(policies, jur, r.rules_seen, str(f))
            r = r._replace(failures=r.failures + extra)
        results.append(r)
    for jur in sorted(policies.jurisdictions):
        if f"{jur.lower()}_test.yaml" not in have:
            path = str(d / f"{jur.lower()}_test.yaml")
            results.append(FileResult(path, 0, [Failure(path, "-", "missing test file for this policy")], set()))
    regional_tests = {f.name for f in files if f.parent != d}
    for a in sorted((d / "regional").glob("*.yaml")) if (d / "regional").is_dir() else []:
        if not a.name.endswith("_test.yaml") and f"{a.stem}_test.yaml" not in regional_tests:
            path = str(a.with_name(f"{a.stem}_test.yaml"))
            results.append(FileResult(path, 0, [Failure(path, "-", "missing test file for this agreement")], set()))
    return results
