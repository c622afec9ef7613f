"""The protective built-in policy for a jurisdiction that has no policy file.

Applies to a caller's jurisdiction, or a finding's subject country, for which ``policies/`` holds no
``<cc>.yaml``. It is never allow-all: with no list of adequate countries every other country is
``foreign``, and

- credentials are redacted everywhere;
- classified material, content the gateway cannot inspect and anything at level ``restricted`` or
  above stay in the country;
- health data and health identifiers stay in the country;
- everything else found (identifiers, tax ids, contact, financial, network) is pseudonymized abroad;
- what is not found is not touched (the gateway cannot act on what it cannot see).
"""

from __future__ import annotations

from gateway.policy.model import Default, Law, Match, Policy, Rule


def builtin_policy(jurisdiction: str) -> Policy:
    """The built-in default for ``jurisdiction`` (rule ids ``<cc>.builtin.*``)."""
    p = jurisdiction.lower() + ".builtin."
    return Policy(
        jurisdiction=jurisdiction,
        name=f"Built-in protective default for {jurisdiction} (no policy file)",
        law=[Law(name="none on file: protective default of the gateway")],
        regulator="unknown",
        version="builtin",
        rules=[
            Rule(id=p + "credentials", title="Credentials never leave unredacted",
                 match=Match(categories=["credentials"]), domestic="redact", adequate="redact", foreign="redact"),
            Rule(id=p + "domestic_only", title="Classified or uninspectable content stays in the country",
                 match=Match(categories=["gov_classified", "uninspectable"]),
                 domestic="allow", adequate="block", foreign="block"),
            Rule(id=p + "sensitive", title="Health data stays in the country",
                 match=Match(categories=["health", "health_id"]), domestic="allow", adequate="block", foreign="block"),
            Rule(id=p + "restricted", title="Restricted and secret requests stay in the country",
                 match=Match(min_level="restricted"), domestic="allow", adequate="block", foreign="block"),
        ],
        default=Default(domestic="allow", adequate="pseudonymize", foreign="pseudonymize"),
        uncertain=["no policy file for this jurisdiction: every fact is unknown, so every transfer is treated as foreign"],
    )
