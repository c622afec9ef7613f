"""`soberana`: serve, demo, stub, scan, policy, audit, keys (SPEC section 2).

Each command is a small function in the module of the stage it belongs to; this file only parses the
command line and imports that module lazily, so `soberana scan` does not pay for the server's imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys


def _port(text: str) -> int:
    """A TCP port for ``--port``: 0 (any free port) to 65535. A larger number was taken modulo 65536
    by the event loop, so the process listened on another port than the one asked for."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {port}")
    return port


def _country(text: str) -> str:
    """An ISO 3166-1 alpha-2 code (any case), as residencies and jurisdictions are everywhere else."""
    if not (len(text) == 2 and text.isascii() and text.isalpha()):
        raise argparse.ArgumentTypeError(f"a two-letter country code (ISO 3166-1 alpha-2), not {text!r}")
    return text.upper()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="soberana", description="Data-sovereignty gateway for AI traffic.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("-c", "--config", default="soberana.yaml")
    s.add_argument("--host")
    s.add_argument("--port", type=_port)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--insecure-no-auth", action="store_true", help="allow auth.mode: none (development only)")
    s.set_defaults(run="gateway.server.main:serve_command")

    s = sub.add_parser("demo", help="run the scripted end-to-end demonstration")
    s.add_argument("--keep", action="store_true", help="keep the temporary directory")
    s.set_defaults(run="gateway.demo:main")

    s = sub.add_parser("stub", help="an OpenAI- and Anthropic-compatible echo model", description=(
        'An OpenAI- and Anthropic-compatible echo model: answers "[stub CC] You said: <last user message>" '
        "in the real wire formats, streams token by token, calls the first declared tool when the message "
        'says "call tool", and honours max tokens (finish_reason length, stop_reason max_tokens, Responses '
        "status incomplete), n choices and stop sequences. The models stub-fail-500, stub-hang, stub-reset "
        "and stub-slow simulate faults."))
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_port, default=8000)
    s.add_argument("--residency", type=_country, default="US")
    s.add_argument("--record", help="append every received body as a JSON line to this file")
    s.set_defaults(run="gateway.testing.stub:stub_command")

    s = sub.add_parser("scan", help="find sensitive data in text or a JSON request body")
    s.add_argument("path", nargs="?", default="-")
    s.add_argument("--format", choices=["text", "json"], default="text")
    s.add_argument("--country", help="only findings for this country")
    s.set_defaults(run="gateway.inspect.cli:scan_command")

    pol = sub.add_parser("policy", help="check, test and explain residency policies")
    psub = pol.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    s = psub.add_parser("check", help="validate every policy file")
    s.add_argument("dir", nargs="?", default="policies")
    s.set_defaults(run="gateway.policy.cli:check_command")
    s = psub.add_parser("test", help="run the test cases beside each policy")
    s.add_argument("dir", nargs="?", default="policies")
    s.set_defaults(run="gateway.policy.cli:test_command")
    s = psub.add_parser("explain", help="the decision for a request, without forwarding")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--request", required=True, help="a JSON request body file")
    s.add_argument("--principal", nargs="*", default=[], metavar="KEY=VALUE")
    s.add_argument("--endpoint", default="/v1/chat/completions")
    s.add_argument("--format", choices=["text", "json"], default="text")
    s.set_defaults(run="gateway.policy.cli:explain_command")

    aud = sub.add_parser("audit", help="verify, query and export audit logs")
    asub = aud.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    s = asub.add_parser("verify", help="check the hash chain and checkpoint signatures")
    s.add_argument("files", nargs="+")
    s.add_argument("--key", help="audit-signing.pub (or the key folder)")
    s.add_argument("--live", action="store_true", help="accept an open tail")
    s.add_argument("--witness", action="append", metavar="FILE",
                   help="the audit.witness file (repeatable): every epoch and checkpoint it holds of a file's chain must be in it")
    s.set_defaults(run="gateway.audit.cli:verify_command")
    s = asub.add_parser("query", help="filter records")
    s.add_argument("files", nargs="+")
    for f in ("since", "until", "principal", "agency", "detector", "route", "residency", "outcome", "request-id",
              "endpoint", "model"):
        s.add_argument(f"--{f}")
    s.add_argument("--value", help="records in which this value was found (a CPF, an e-mail; '-' reads it from "
                                   "standard input); needs --keys")
    s.add_argument("--keys", metavar="DIR", help="the key folder: computes fingerprints, so that --value, and "
                                                 "--principal, --agency and --request-id values kept as fp:..., match")
    s.add_argument("--format", choices=["table", "json"], default="table")
    s.set_defaults(run="gateway.audit.cli:query_command")
    s = asub.add_parser("export", help="convert records for a SIEM")
    s.add_argument("files", nargs="+")
    s.add_argument("--format", choices=["ocsf", "ecs"], required=True)
    s.set_defaults(run="gateway.audit.cli:export_command")

    k = sub.add_parser("keys", help="create or rotate keys")
    ksub = k.add_subparsers(dest="keys_command", required=True, metavar="SUBCOMMAND")
    s = ksub.add_parser("init", help="create a key folder")
    s.add_argument("dir")
    s.set_defaults(run="gateway.cli:keys_init")
    s = ksub.add_parser("rotate", help="add a new current key; old keys stay usable")
    s.add_argument("dir")
    s.set_defaults(run="gateway.cli:keys_rotate")
    s = ksub.add_parser("decrypt", help="the values inside [ENC:...] tokens (key holders only)")
    s.add_argument("dir")
    s.add_argument("tokens", nargs="*", metavar="TOKEN",
                   help="tokens to open, one value a line; without any, every token in standard input is replaced")
    s.set_defaults(run="gateway.cli:keys_decrypt")
    return p


_gone: set[int] = set()  # id() of the streams whose reader has gone


def say(line: str, file=None) -> None:
    """Print ``line`` (to ``file``, standard output by default) for a command whose exit status is its
    verdict (``audit verify``, ``policy check|test``). When the reader has gone (``| head``, ``| true``)
    the printing stops and the command goes on to its real exit status; ``main`` would otherwise end
    it with 0 on the broken pipe."""
    f = sys.stdout if file is None else file
    if id(f) in _gone:
        return
    try:
        f.write(line + "\n")
        f.flush()
    except BrokenPipeError:
        _gone.add(id(f))
        try:
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), f.fileno())  # so the exit's flush is quiet
        except (OSError, ValueError):  # a stream without a file descriptor (io.StringIO)
            pass


def keys_init(args: argparse.Namespace) -> int:
    from gateway.keys import init_keys

    try:
        ring = init_keys(args.dir)
    except FileExistsError as e:
        print(f"soberana keys init: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a file in the way, no permission: say so instead of a traceback
        print(f"soberana keys init: cannot create {e.filename or args.dir}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"created {args.dir} (key id {ring.current}); auditors verify with {args.dir}/audit-signing.pub")
    return 0


def keys_rotate(args: argparse.Namespace) -> int:
    from gateway.keys import rotate_keys

    try:
        ring = rotate_keys(args.dir)
    except FileNotFoundError:
        print(f"soberana keys rotate: no keyring in {args.dir}; run `soberana keys init` first", file=sys.stderr)
        return 1
    except ValueError as e:  # a damaged keyring is left as it is: rotating would lose its keys
        print(f"soberana keys rotate: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"soberana keys rotate: cannot rotate {e.filename or args.dir}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"rotated {args.dir}: current key id {ring.current}; older keys {', '.join(ring.order[:-1])} still decrypt and verify")
    return 0


def keys_decrypt(args: argparse.Namespace) -> int:
    """``soberana keys decrypt DIR [TOKEN ...]``: what SPEC section 8 promises key holders, the value
    inside an ``[ENC:...]`` token (any key id the keyring holds, rotated ones too). With tokens, prints
    one value a line; without, copies standard input with every token replaced by its value. A token
    that does not open (unknown key, tampered, another keyring) stays as it is and is reported on
    standard error by position and reason, never by content; the exit status is then 1."""
    import re

    from gateway.keys import KeyRing
    from gateway.transform.tokens import TokenError, decrypt_token

    try:
        ring = KeyRing.load(args.dir)
    except FileNotFoundError:
        print(f"soberana keys decrypt: no keyring in {args.dir}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"soberana keys decrypt: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
        return 1
    failed = 0

    def open_(token: str, where: str) -> str | None:
        nonlocal failed
        try:
            return decrypt_token(ring, token)
        except TokenError as e:
            failed += 1
            print(f"soberana keys decrypt: {where}: {e}", file=sys.stderr)
            return None

    if args.tokens:
        for i, token in enumerate(args.tokens, 1):
            value = open_(token, f"token {i}")
            sys.stdout.write((token if value is None else value) + "\n")  # line i answers token i
    else:
        # bytes that are not UTF-8 (a log of another encoding) pass through unchanged
        text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")

        def replace(m: re.Match) -> str:
            value = open_(m.group(0), f"line {text.count(chr(10), 0, m.start()) + 1}")
            return m.group(0) if value is None else value

        out = re.sub(r"\[ENC:[^:\]\s]{1,64}:[A-Za-z0-9_-]{16,}\]", replace, text)
        sys.stdout.flush()
        sys.stdout.buffer.write(out.encode("utf-8", "surrogateescape"))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    module, func = args.run.split(":")
    try:
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
