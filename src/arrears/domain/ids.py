"""Identifiers of stored objects."""

from __future__ import annotations

import secrets
import time

__all__ = ["new_id"]


def new_id() -> str:
    """A 24-hex-digit id whose first 8 digits are the creation second.

    Ids sort roughly by creation, which keeps B-tree inserts local; they carry no
    meaning a client may rely on. Wall time is right here (not the business clock):
    an id is a storage concern, not a billing fact.
    """
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"
