"""transform stage: apply the policy's actions on the way out, undo them in the answer (SPEC section 8).

- ``tokens``: ``encrypt_token``/``decrypt_token`` (AES-SIV ``[ENC:BR.k1:…]``), ``hash_token``
  (``[HASH:CPF:…]``), ``redact_token``, ``fingerprint`` (audit), ``label_for`` (``br.cpf`` → ``CPF``).
- ``pseudonymize``: ``PlaceholderMap`` (one per request: ``[CPF_1]`` ↔ value) and ``normalize_value``.
- ``apply``: ``apply(texts, findings, actions, ring, jurisdiction, pmap)`` — pure.
- ``restore``: ``restore_text`` (whole answers), ``StreamRestorer`` (one per stream channel, split-safe),
  ``restore_arguments`` (tool-call arguments, only when policy allows). Never inside URLs by default.
- ``leaks``: ``scan_answer(text, sent)`` — sensitive values in an answer the caller did not send.
"""
