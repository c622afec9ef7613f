"""`soberana audit verify|query|export` (SPEC section 2). Each returns the process exit code."""

from __future__ import annotations

import argparse
import sys

import orjson

from gateway.audit.export import export
from gateway.audit.query import Filter, format_table, parse_time, query
from gateway.audit.verify import check_witness, read_witness, verify_file


def _closed_pipe() -> int:
    """The reader went away (``| head``): stop quietly, as Unix tools do."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _err(cmd: str, msg: str) -> int:
    from gateway.cli import say

    say(f"soberana audit {cmd}: {msg}", sys.stderr)
    return 2


def _note_skipped(skipped: dict[str, int]) -> None:
    """Say which files had lines that are not audit records: a gzip archive or a wrong file otherwise
    yields an empty answer that reads as "no such requests"."""
    for path, n in skipped.items():
        print(f"note: {path}: {n} line(s) are not audit records (a compressed, damaged or other file?) and "
              "were skipped; `soberana audit verify` names the first bad one", file=sys.stderr)


def verify_command(args: argparse.Namespace) -> int:
    """Exit 0 when every file's chain and every checkpoint signature hold; else 1, naming for each bad
    file the first bad sequence number and why."""
    keys = None
    if args.key:
        from gateway.keys import load_public_keys

        try:
            keys = load_public_keys(args.key)
        except (OSError, ValueError) as e:
            return _err("verify", f"cannot load verification keys from {args.key}: {e}")
        if not keys:
            return _err("verify", f"no audit-signing-*.pub keys in {args.key}")
    from gateway.cli import say  # the reader leaving (| head) must not turn a FAILED into exit 0

    bad = False
    witness = None
    if args.witness:  # read before the files: the writer appends to it after the chain file
        try:
            witness = read_witness(args.witness, keys)
        except OSError as e:
            return _err("verify", f"cannot read witness {e.filename}: {e.strerror}")
        for why in witness.problems:
            say(f"witness FAILED: {why}")
            bad = True
        if witness.skipped:
            print(f"note: {witness.skipped} line(s) of the witness are not whole epoch or checkpoint lines and were "
                  "skipped", file=sys.stderr)
    covered: set[str] = set()
    for path in args.files:
        try:
            rep = verify_file(path, keys, live=args.live)
        except OSError as e:
            say(f"{path}: FAILED: cannot read ({e.strerror})")
            bad = True
            continue
        if witness is not None and all(p.reason == "gap" for p in rep.problems):  # the chain holds
            found, epochs = check_witness(rep, witness)
            rep.problems.extend(found)
            covered |= epochs
        for p in rep.problems:
            if p.reason == "gap":
                say(f"{path}: seq {p.seq}: gap: {p.detail}")
        breaks = [p for p in rep.problems if p.reason != "gap"]
        summary = (f"{rep.records} records, {rep.checkpoints} checkpoints, {rep.epochs} "
                   f"epoch{'s' if rep.epochs != 1 else ''}")
        if breaks:
            p = breaks[0]
            say(f"{path}: FAILED at seq {p.seq}: {p.reason}: {p.detail}")
        elif rep.problems:
            say(f"{path}: FAILED: the chain holds but has {len(rep.problems)} gap(s) ({summary})")
        else:
            state = "closed" if rep.closed else f"open, {rep.unsigned_tail} line(s) after the last checkpoint"
            signed = f"; signatures verified (key ids {', '.join(sorted(rep.kids))})" if keys is not None and rep.kids else ""
            witnessed = "; every epoch and checkpoint the witness holds is in it" if witness is not None else ""
            say(f"{path}: OK: {summary}, {state}{signed}{witnessed}")
        bad = bad or not rep.ok
    if witness is not None:
        other = {w.epoch for w in witness.lines} - covered
        if other:
            print(f"note: the witness holds {len(other)} epoch(s) of no file given (other workers or hosts, or a "
                  "file that is missing)", file=sys.stderr)
    if keys is None:
        say("note: checkpoint signatures were NOT checked (pass --key audit-signing.pub or the key folder)")
    return 1 if bad else 0


def _filter(args: argparse.Namespace, ring=None, value: str | None = None) -> Filter:
    """The query's Filter. With ``ring`` (``--keys``), client strings match in their ``fp:`` form too,
    and ``value`` becomes the fingerprints it is kept under."""
    from gateway.audit.record import client_forms, value_fingerprints

    def forms(v: str | None):
        return client_forms(ring, v) if v is not None and ring is not None else v

    return Filter(
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
        principal=forms(args.principal), agency=forms(args.agency), detector=args.detector, route=args.route,
        residency=args.residency, outcome=args.outcome, request_id=forms(args.request_id),
        endpoint=args.endpoint, model=args.model,
        fingerprints=value_fingerprints(ring, value, args.detector) if value is not None else None,
    )


def _value_and_ring(args: argparse.Namespace):
    """(the --value to look for, the KeyRing of --keys), either None when not given; raises ValueError
    with what is wrong. The value is never repeated in a message: it is the personal data sought."""
    value = args.value
    if value == "-":
        value = sys.stdin.readline().rstrip("\r\n")
    if value is not None and not value.strip():
        raise ValueError("--value is empty")
    if value is not None and args.keys is None:
        raise ValueError("--value needs the key folder (--keys DIR): records hold values only as keyed fingerprints")
    ring = None
    if args.keys is not None:
        from gateway.keys import KeyRing

        try:
            ring = KeyRing.load(args.keys)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot load the keys in {args.keys}: {e}") from None
    return value, ring


def _note_fingerprinted(args: argparse.Namespace) -> None:
    """Warn when a --principal or --agency value is one the gateway never stores as written: a subject
    that looks personal (an e-mail, a CPF) goes into records as ``fp:<fingerprint>``, so the query
    finds none of that caller's records, which reads as "this caller did nothing"."""
    from gateway.audit.record import judged_safe

    for flag in ("principal", "agency", "request_id"):
        value = getattr(args, flag)
        if value is not None and not value.startswith("fp:") and not judged_safe(value):
            # (the value itself is not repeated: it looks personal)
            print(f"note: the --{flag.replace('_', '-')} value looks like personal data; records hold such values "
                  "only as their fingerprint (fp:...), so it matches no record as written (--keys DIR matches "
                  "that form too)", file=sys.stderr)


def query_command(args: argparse.Namespace) -> int:
    """Print the records that match every given filter, as a table or JSON lines."""
    from gateway.audit.record import OUTCOMES

    if args.outcome is not None:
        # a misspelt outcome ("block") matched no record, which read as "nothing was blocked"
        args.outcome = args.outcome.lower()
        if args.outcome not in OUTCOMES:
            return _err("query", f"bad outcome {args.outcome!r}: use one of {', '.join(OUTCOMES)}")
    try:
        value, ring = _value_and_ring(args)
    except ValueError as e:
        return _err("query", str(e))
    try:
        flt = _filter(args, ring, value)
    except ValueError as e:
        return _err("query", f"bad time: {e} (use ISO-8601 like 2026-11-26T10:00Z or relative like 15m, 1h, 2d)")
    if flt.since is not None and flt.until is not None and flt.since > flt.until:
        # "--since 1h --until 2h" (meant: from 2 h ago to 1 h ago) matched nothing, which read as "no requests"
        return _err("query", "--since is later than --until: no record can match (relative times count back from now)")
    if ring is None:
        _note_fingerprinted(args)
    skipped: dict[str, int] = {}
    try:
        found = query(args.files, flt, skipped)
        if args.format == "json":
            out = sys.stdout.buffer
            for rec in found:
                out.write(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS) + b"\n")
            out.flush()
        else:
            print(format_table(found))
    except BrokenPipeError:
        return _closed_pipe()
    except OSError as e:
        return _err("query", f"cannot read {e.filename}: {e.strerror}")
    _note_skipped(skipped)
    return 0


def export_command(args: argparse.Namespace) -> int:
    """Write every record as an OCSF or ECS JSON line."""
    from gateway.audit.query import iter_records

    out = sys.stdout.buffer
    skipped: dict[str, int] = {}
    try:
        for doc in export(iter_records(args.files, skipped), args.format):
            out.write(orjson.dumps(doc) + b"\n")
        out.flush()
    except BrokenPipeError:
        return _closed_pipe()
    except OSError as e:
        return _err("export", f"cannot read {e.filename}: {e.strerror}")
    _note_skipped(skipped)
    return 0
