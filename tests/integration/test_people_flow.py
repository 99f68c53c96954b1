"""Two people become contacts while each has two devices on two server processes: every
device hears the request, its acceptance, its notification and the other's presence."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.harness import bearer, connect, register, ws_url

API = "/api/v1"


async def heard(socket: Any, wanted: set[tuple[str, str]], timeout: float = 10.0) -> None:
    """Read `socket` until it has had a frame for each (event, detail) in `wanted`: the
    detail is a notification's type, a presence's user and status, a request's status."""
    missing = set(wanted)
    async with asyncio.timeout(timeout):
        while missing:
            frame = json.loads(await socket.recv())
            event = frame.get("event", "")
            if event == "notification":
                missing.discard((event, frame["notification"]["type"]))
            elif event == "presence":
                missing.discard((event, f"{frame['user_id']} {frame['status']}"))
            elif event.startswith("contact_request"):
                missing.discard((event, frame["request"]["status"]))


async def test_request_and_accept_reach_all_four_devices_with_notifications_and_presence(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_servers
    alice, bob = await register(one), await register(one)
    alice_id, bob_id = alice["user"]["id"], bob["user"]["id"]
    alice_token, bob_token = alice["tokens"]["access_token"], bob["tokens"]["access_token"]
    async with (
        connect(ws_url(one, alice_token)) as alice_phone,
        connect(ws_url(two, alice_token)) as alice_laptop,
        connect(ws_url(one, bob_token)) as bob_phone,
        connect(ws_url(two, bob_token)) as bob_laptop,
    ):
        asked = await one.post(
            f"{API}/contacts/requests", json={"user_id": alice_id}, headers=bearer(bob["tokens"])
        )
        assert asked.status_code == 201, asked.text
        for device in (alice_phone, alice_laptop):
            await heard(
                device, {("contact_request", "pending"), ("notification", "contact_request")}
            )
        for device in (bob_phone, bob_laptop):
            await heard(device, {("contact_request", "pending")})

        accepted = await two.post(
            f"{API}/contacts/requests/{asked.json()['id']}/accept",
            headers=bearer(alice["tokens"]),
        )
        assert accepted.status_code == 200, accepted.text
        for device in (alice_phone, alice_laptop):
            await heard(
                device, {("contact_request_updated", "accepted"), ("presence", f"{bob_id} online")}
            )
        for device in (bob_phone, bob_laptop):
            await heard(
                device,
                {
                    ("contact_request_updated", "accepted"),
                    ("notification", "contact_accepted"),
                    ("presence", f"{alice_id} online"),
                },
            )
