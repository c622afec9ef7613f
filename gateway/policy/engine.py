"""``decide``: principal + findings + candidate upstreams -> Decision. Pure: no I/O, no clock.

How a decision is made (SPEC section 7):

1. The applicable policies are the caller's jurisdiction and the subject country of every finding
   (a finding without a country brings none). A jurisdiction without a policy file gets the
   protective built-in default (``gateway.policy.builtin``), never allow-all.
2. For each candidate, each applicable policy classifies the upstream's residency relative to its own
   jurisdiction: ``domestic``, ``adequate`` (on its list, or sharing a regional agreement that covers
   the finding's category), ``prohibited`` (receives nothing) or ``foreign``.
3. Within a policy, every rule that matches a finding proposes the action for that class; the
   strictest wins (the first such rule in file order names it); no match -> the policy's ``default``.
   A rule with ``min_level`` only adds strictness to what the other rules (or the default) give, so
   raising a request's level never relaxes a decision.
   Across policies the strictest action wins; every policy that proposed it is named.
4. Candidates are walked in order; the first one where no action is ``block`` and which is healthy is
   the route. Nothing blocked but nothing healthy -> ``unavailable``; everything blocked -> ``blocked``.
   A candidate whose residency is unknown is never taken (rule ``builtin.unknown_residency``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import NamedTuple

import msgspec

from gateway.policy.load import PolicySet
from gateway.policy.model import ACTIONS, LEVELS, Policy, Rule

UNKNOWN_RESIDENCY = "builtin.unknown_residency"
"""Pseudo rule id for candidates without a residency: a missing fact never routes."""
NO_CANDIDATES = "builtin.no_candidates"

_RANK = {a: i for i, a in enumerate(ACTIONS)}
_LEVEL = {lv: i for i, lv in enumerate(LEVELS)}
_TOP_LEVEL = len(LEVELS) - 1
_MEMO_LIMIT = 65536


class Candidate(NamedTuple):
    """One entry of the requested model's preference list."""

    upstream: str
    """Upstream name from the config."""
    residency: str | None
    """ISO country where the upstream processes data; None (unknown) is never routed to."""
    model: str
    """The model name to ask that upstream for."""


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What the policy engine decided for one request. Carries rule ids, never values."""

    decision_id: str
    outcome: str
    """``route``, ``blocked`` (every candidate blocked by policy) or ``unavailable`` (compliant ones unhealthy)."""
    route: Candidate | None
    destination: str | None
    """Class of the route relative to the caller: domestic | adequate | foreign | prohibited."""
    actions: list[str]
    """One action per finding, in the order of the findings. For ``blocked`` and ``unavailable`` they
    are the actions for the first candidate considered (so the audit shows what blocked)."""
    by_detector: dict[str, str]
    """Detector id -> strictest action applied to it."""
    rules: list[str]
    """Rule ids that produced the actions, then those that blocked any candidate."""
    blocked_by: list[str]
    """Rule ids that blocked a candidate (for a route: candidates skipped before it)."""
    policy_revision: str
    applied: list[str]
    """Jurisdictions whose policies applied: the caller's first, then subject countries."""
    finding_rules: list[list[str]] = []
    """Per finding, the rule ids that decided its action."""


class _Eval(NamedTuple):
    actions: list[str]
    finding_rules: list[list[str]]
    blockers: list[str]


def _always(name: str) -> bool:
    return True


def destination_class(policies: PolicySet, policy: Policy, residency: str, category: str | None = None) -> str:
    """Where ``residency`` stands for ``policy``'s jurisdiction (for ``category`` when given)."""
    if residency == policy.jurisdiction:
        return "domestic"
    if residency in policy.prohibited:
        return "prohibited"
    if residency in policy.adequate:
        return "adequate"
    if category is not None and category in policies.regional.get((policy.jurisdiction, residency), ()):
        return "adequate"
    return "foreign"


def _min_level(rule: Rule) -> int:
    return _LEVEL[rule.match.min_level] if rule.match.min_level else 0


def _matches(rule: Rule, detector: str, category: str, country: str | None, lvl: int) -> bool:
    m = rule.match
    if (m.categories or m.detectors) and category not in m.categories and detector not in m.detectors:
        return False
    if m.subject_countries and country not in m.subject_countries:
        return False
    return lvl >= _min_level(rule)


def _rule_action(policies: PolicySet, policy: Policy, detector: str, category: str, country: str | None,
                 residency: str, lvl: int) -> tuple[str, str]:
    """(action, rule id) of one policy for one finding at one residency; memoized per PolicySet."""
    key = (policy.jurisdiction, detector, category, country, residency, lvl)
    memo = policies.memo
    hit = memo.get(key)
    if hit is not None:
        return hit
    cls = destination_class(policies, policy, residency, category)
    if cls == "prohibited":
        out = ("block", policy.jurisdiction.lower() + ".prohibited")
    else:
        # (action, rule id, file position): the strictest rule that matches at every level, else the
        # default; and the strictest of the rules gated by ``min_level``. A gated rule only ever adds
        # strictness (raising a request's level must never relax what happens to its data): without
        # this, a permissive rule that starts to match at ``confidential`` overrode a stricter default
        base = gated = None
        for n, rule in enumerate(policy.rules):
            if _matches(rule, detector, category, country, lvl):
                a = getattr(rule, cls)
                if _min_level(rule):
                    if gated is None or _RANK[a] > _RANK[gated[0]]:
                        gated = (a, rule.id, n)
                elif base is None or _RANK[a] > _RANK[base[0]]:
                    base = (a, rule.id, n)
        if base is None:
            base = (getattr(policy.default, cls), policy.jurisdiction.lower() + ".default", len(policy.rules))
        if gated is not None and (_RANK[gated[0]], -gated[2]) > (_RANK[base[0]], -base[2]):
            base = gated  # (on a tie the rule first in file order names it, a rule before the default)
        out = base[:2]
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = out
    return out


def _request_blockers(policies: PolicySet, pols: list[Policy], residency: str, lvl: int) -> list[str]:
    """Rules that block this residency for the request as a whole (prohibited list, level rules)."""
    out: list[str] = []
    for p in pols:
        cls = destination_class(policies, p, residency)
        if cls == "prohibited":
            out.append(p.jurisdiction.lower() + ".prohibited")
            continue
        for rule in p.rules:
            m = rule.match
            if not (m.categories or m.detectors or m.subject_countries) and lvl >= _min_level(rule) \
                    and getattr(rule, cls) == "block":
                out.append(rule.id)
    return out


def _evaluate(policies: PolicySet, pols: list[Policy], findings: Sequence, residency: str, lvl: int) -> _Eval:
    """The candidate's evaluation, memoized per PolicySet: it depends only on the policies, the
    residency, the level and each finding's (detector, category, country) — most requests repeat one
    of a few such shapes (no findings at all, above all). Callers must not mutate the lists."""
    key = (tuple(p.jurisdiction for p in pols), residency, lvl,
           tuple((f.detector, f.category, f.country) for f in findings))
    memo = policies.eval_memo
    ev = memo.get(key)
    if ev is None:
        ev = _evaluate_uncached(policies, pols, findings, residency, lvl)
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = ev
    return ev


def _evaluate_uncached(policies: PolicySet, pols: list[Policy], findings: Sequence, residency: str,
                       lvl: int) -> _Eval:
    blockers = _request_blockers(policies, pols, residency, lvl)
    actions: list[str] = []
    finding_rules: list[list[str]] = []
    for f in findings:
        best = "allow"
        ids: list[str] = []
        for p in pols:
            a, rid = _rule_action(policies, p, f.detector, f.category, f.country, residency, lvl)
            if _RANK[a] > _RANK[best]:
                best, ids = a, [rid]
            elif a == best and rid not in ids:
                ids.append(rid)
        actions.append(best)
        finding_rules.append(ids)
        if best == "block":
            blockers.extend(ids)
    return _Eval(actions, finding_rules, blockers)


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


def decide(policies: PolicySet, principal, findings: Sequence, candidates: Sequence[Candidate],
           level: str = "internal", healthy: Callable[[str], bool] = _always,
           decision_id: str | None = None) -> Decision:
    """Decide route and per-finding actions for one request. See the module docstring for the rules.

    ``level`` outside the known levels is read as the highest (``secret``): fail closed.
    """
    if not findings:  # most requests: the same Decision, without the per-finding work
        return _decide_clean(policies, principal.jurisdiction, candidates, _LEVEL.get(level, _TOP_LEVEL),
                             healthy, decision_id)
    return _decide(policies, principal, findings, candidates, level, healthy, decision_id)


def _decide_clean(policies: PolicySet, caller: str, candidates: Sequence[Candidate], lvl: int,
                  healthy: Callable[[str], bool], decision_id: str | None) -> Decision:
    """``_decide`` for a request without findings, step for step: only the caller's policy applies,
    there are no actions, per-finding rules or detectors, and each candidate's evaluation reduces to
    its request-wide blockers (memoized per PolicySet, caller, residency and level)."""
    memo = policies.clean_memo
    blocked_by: list[str] = []
    route = None
    fallback = False  # a compliant candidate that is not healthy
    for cand in candidates:
        residency = cand.residency
        if not residency:
            blocked_by.append(UNKNOWN_RESIDENCY)
            continue
        key = (caller, residency, lvl)
        blockers = memo.get(key)
        if blockers is None:
            blockers = _evaluate(policies, [policies.policy(caller)], (), residency, lvl).blockers
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[key] = blockers
        if blockers:
            blocked_by.extend(blockers)
            continue
        if healthy(cand.upstream):
            route = cand
            break
        fallback = True
    if route is not None:
        outcome = "route"
    elif fallback:
        outcome = "unavailable"
    else:
        outcome = "blocked"
        if not candidates:
            blocked_by.append(NO_CANDIDATES)
    if blocked_by:
        blocked_by = _unique(blocked_by)
    return Decision(
        decision_id=decision_id or uuid.uuid4().hex,
        outcome=outcome,
        route=route,
        destination=destination_class(policies, policies.policy(caller), route.residency) if route else None,
        actions=[],
        by_detector={},
        rules=list(blocked_by),
        blocked_by=blocked_by,
        policy_revision=policies.revision,
        applied=[caller],
        finding_rules=[],
    )


def _decide(policies: PolicySet, principal, findings: Sequence, candidates: Sequence[Candidate],
            level: str, healthy: Callable[[str], bool], decision_id: str | None) -> Decision:
    """``decide`` in general (any findings)."""
    lvl = _LEVEL.get(level, _TOP_LEVEL)
    caller = principal.jurisdiction
    applied = [caller] + sorted({f.country for f in findings if f.country and f.country != caller})
    pols = [policies.policy(j) for j in applied]
    blocked_by: list[str] = []
    first: _Eval | None = None  # the most preferred candidate's evaluation: what a block shows
    fallback: _Eval | None = None  # the first compliant candidate, when none is healthy
    chosen: tuple[Candidate, _Eval] | None = None
    for cand in candidates:
        if not cand.residency:
            blocked_by.append(UNKNOWN_RESIDENCY)
            continue
        ev = _evaluate(policies, pols, findings, cand.residency, lvl)
        if first is None:
            first = ev
        if ev.blockers:
            blocked_by.extend(ev.blockers)
            continue
        if healthy(cand.upstream):
            chosen = (cand, ev)
            break
        if fallback is None:
            fallback = ev
    if chosen is not None:
        outcome, (route, ev) = "route", chosen
    elif fallback is not None:
        outcome, route, ev = "unavailable", None, fallback
    else:
        outcome, route = "blocked", None
        if first is not None:
            ev = first
        else:  # no candidate with a known residency: nothing may go anywhere
            if not candidates:
                blocked_by.append(NO_CANDIDATES)
            ev = _Eval(["block"] * len(findings), [list(blocked_by) for _ in findings], [])
    by_detector: dict[str, str] = {}
    for f, a in zip(findings, ev.actions):
        prev = by_detector.get(f.detector)
        if prev is None or _RANK[a] > _RANK[prev]:
            by_detector[f.detector] = a
    blocked_by = _unique(blocked_by)
    return Decision(
        decision_id=decision_id or uuid.uuid4().hex,
        outcome=outcome,
        route=route,
        destination=destination_class(policies, pols[0], route.residency) if route else None,
        actions=list(ev.actions),  # copies: the evaluation is shared through the memo
        by_detector=by_detector,
        rules=_unique([r for ids in ev.finding_rules for r in ids] + blocked_by),
        blocked_by=blocked_by,
        policy_revision=policies.revision,
        applied=applied,
        finding_rules=[list(ids) for ids in ev.finding_rules],
    )
