"""`soberana policy check|test|explain` (SPEC section 2)."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from gateway.yamlfile import ConfigError

PRINCIPAL_KEYS = ("sub", "agency", "jurisdiction")


def check_command(args) -> int:
    """Validate every policy, agreement and test file; print each error as file:line: field: message."""
    from gateway.cli import say  # the reader leaving (2>&1 | head) must not turn errors into exit 0
    from gateway.policy.load import case_files, check_directory

    policies, errors = check_directory(args.dir)
    for e in errors:
        say(str(e), sys.stderr)
    if errors:
        say(f"{len(errors)} error(s)", sys.stderr)
        return 1
    say(f"ok: {len(policies.jurisdictions)} policies, {len(policies.agreements)} regional agreements, "
        f"{len(case_files(args.dir))} test files (revision {policies.revision})")
    return 0


def test_command(args) -> int:
    """Run every case beside the policies; print failures with file and case name; exit 1 on any."""
    from gateway.cli import say  # the reader leaving (| head) must not turn failures into exit 0
    from gateway.policy.cases import run_all
    from gateway.policy.load import check_directory

    policies, errors = check_directory(args.dir)
    for e in errors:
        say(f"FAIL {e}")
    if errors:
        say(f"0 passed, {len(errors)} failed (files that do not validate; nothing was run)")
        return 1
    results = run_all(policies, args.dir)
    passed = sum(r.passed for r in results)
    failed = 0
    for r in results:
        for f in r.failures:
            failed += 1
            say(f"FAIL {f}")
    say(f"{passed} passed, {failed} failed ({len(results)} files, revision {policies.revision})")
    return 1 if failed else 0


def _principal(items: list[str], default_jurisdiction: str):
    from gateway.auth.principal import Principal

    values = {"sub": "explain", "agency": "-", "jurisdiction": default_jurisdiction}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in PRINCIPAL_KEYS:
            raise ValueError(f"--principal takes key=value with key one of {', '.join(PRINCIPAL_KEYS)}: {item!r}")
        if key == "jurisdiction" and not (len(value) == 2 and value.isascii() and value.isalpha()):
            # as auth accepts them (ISO 3166-1 alpha-2): an empty or odd code explained a decision
            # under a policy no caller can ever get
            raise ValueError(f"--principal jurisdiction= takes a two-letter country code (ISO 3166-1 alpha-2): {item!r}")
        values[key] = value.upper() if key == "jurisdiction" else value
    return Principal(**values)


def explain_command(args) -> int:
    """Print the decision for a request body without forwarding it."""
    from gateway.config import load_config
    from gateway.policy.explain import explain_request, render_text
    from gateway.policy.load import load_policies

    try:
        config = load_config(args.config)
        policies = load_policies(config.path(config.policies))
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    try:
        payload = orjson.loads(Path(args.request).read_bytes())
    except OSError as e:
        print(f"{args.request}: cannot read: {e.strerror}", file=sys.stderr)
        return 1
    except orjson.JSONDecodeError:
        print(f"{args.request}: not valid JSON", file=sys.stderr)
        return 1
    if not isinstance(payload, dict):
        print(f"{args.request}: the body must be a JSON object", file=sys.stderr)
        return 1
    try:
        principal = _principal(args.principal, config.jurisdiction)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        result = explain_request(config, policies, principal, args.endpoint, payload)
    except Exception as e:  # a body the dialect cannot read: say why, never echo the body
        if e.__class__.__name__ != "DialectError":
            raise
        print(f"{args.request}: {e}", file=sys.stderr)
        return 1
    if args.format == "json":
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_text(result))
    return 1 if result.get("error") else 0
