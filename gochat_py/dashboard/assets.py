"""The dashboard's page, stylesheet and script: package data in static/, read once at start."""

from __future__ import annotations

from importlib.resources import files

import msgspec


class Assets(msgspec.Struct, frozen=True):
    page: bytes
    stylesheet: bytes
    script: bytes


def load_assets() -> Assets:
    static = files("gochat_py.dashboard") / "static"
    return Assets(
        page=(static / "index.html").read_bytes(),
        stylesheet=(static / "dashboard.css").read_bytes(),
        script=(static / "dashboard.js").read_bytes(),
    )
