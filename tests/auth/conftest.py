"""Auth fixtures: the IdP's keys (generated once) and their public PEM files."""

from __future__ import annotations

from pathlib import Path

import pytest
from auth_helpers import Keys, pem_public


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def pem_dir(tmp_path: Path, keys: Keys) -> Path:
    """The IdP's public keys as PEM files: kids idp-rsa, idp-ec, idp-ed."""
    (tmp_path / "idp-rsa.pem").write_bytes(pem_public(keys.rsa))
    (tmp_path / "idp-ec.pem").write_bytes(pem_public(keys.ec))
    (tmp_path / "idp-ed.pem").write_bytes(pem_public(keys.ed))
    return tmp_path
