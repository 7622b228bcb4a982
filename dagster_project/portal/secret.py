"""The session-signing secret: generated on first run, kept under the portal folder (0600)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from dagster_project.portal.db import ensure_private_dir

log = logging.getLogger(__name__)

SECRET_NAME = "session_secret"


def load_or_create_secret(portal_dir: Path) -> str:
    """Read the secret, creating it (0600, exclusive create) if it does not exist yet."""
    ensure_private_dir(portal_dir)
    path = portal_dir / SECRET_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
            handle.flush()
            os.fsync(handle.fileno())
        log.info("created a new session secret in %s", path)
    if path.stat().st_mode & 0o077:
        log.warning("%s was readable by other users; restricting it to 0600", path)
        os.chmod(path, 0o600)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path}: the session secret is too short; delete the file to generate a new one")
    return secret
