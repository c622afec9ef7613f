"""Policy stage: national residency policies as data, and the pure ``decide`` function (SPEC section 7).

    policies = load_policies("policies/")          # raises ConfigError naming file:line:field
    d = decide(policies, principal, findings, [Candidate("openai", "US", "gpt-4o-mini")])
"""

from gateway.policy.engine import Candidate, Decision, decide
from gateway.policy.load import PolicySet, load_policies
from gateway.policy.model import ACTIONS, CATEGORIES, LEVELS

__all__ = ["ACTIONS", "CATEGORIES", "LEVELS", "Candidate", "Decision", "PolicySet", "decide", "load_policies"]
