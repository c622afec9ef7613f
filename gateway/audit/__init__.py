"""The tamper-evident audit log (SPEC section 9).

One hash-chained JSON-lines file per worker (``<audit.path>/audit-w<N>.jsonl``), one record per
request, signed checkpoints, never a raw value.

- ``record.build_record(ex, ring) -> dict``: the record of an Exchange (fingerprints, not values);
- ``writer.AuditLog``: ``await start()``, ``record(ex, ring)`` or ``append(record)`` (never block;
  raise ``AuditUnavailable`` when the sink fails, and the server then refuses to forward; the
  records of one turn of the event loop are built and chained together at its end), ``healthy``,
  ``lag``, ``await close()`` (closing checkpoint);
- ``_record_c`` (compiled, when built): ``chain(items, i, out, seq, head, room)``, the stored lines
  of a turn's ``record(ex, ring)`` items byte for byte as ``build_record`` + ``chain.seal`` make them,
  several times cheaper; ``writer.IMPLEMENTATION`` says which is in use, ``SOBERANA_NO_EXTENSIONS=1``
  selects the reference;
- ``chain``: line hashing, epochs, checkpoint signatures (Ed25519, key id in each checkpoint);
- ``verify.verify_file(path, keys=None, live=False) -> Report``;
- ``query.query(paths, Filter(...))``, ``export.export(records, "ocsf"|"ecs")``;
- ``cli``: ``soberana audit verify|query|export``.
"""
