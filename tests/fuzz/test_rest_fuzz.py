"""Every REST operation, fuzzed from the server's own `/openapi.json` with schemathesis:
no 5xx, and every answer is one the document describes (its status, content type, body
schema and headers), for an anonymous caller, a bearer token and a browser's cookie.

The fuzzed callers own real data (conversations, members, messages), and path ids and
member ids are drawn from it as well as generated, so requests reach it too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import FailedHealthCheck
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.conftest import (
    REST_EXAMPLES,
    LiveServer,
    fuzz_settings,
    is_uuid,
    register_sync,
    start_conversation,
    upload_sync,
)
from tests.harness import bearer
from tests.media_files import png

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


@dataclass(frozen=True)
class Caller:
    """The fuzzing user: their credentials, and the ids the fuzzer may use beside random ones."""

    tokens: dict[str, Any]
    conversation_ids: list[str]
    user_ids: list[str]
    media_ids: list[str]


@pytest.fixture(scope="module")
def caller(live_server: LiveServer) -> Caller:
    with httpx.Client(base_url=live_server.base_url) as client:
        me, peer, stranger = register_sync(client), register_sync(client), register_sync(client)
        tokens, ids = me["tokens"], [u["user"]["id"] for u in (me, peer, stranger)]
        direct = start_conversation(client, tokens, {"participant_id": ids[1]})
        group = start_conversation(client, tokens, {"name": "fuzzed", "participant_ids": ids[1:]})
        # Not theirs: every route must answer it as if it did not exist.
        foreign = start_conversation(client, peer["tokens"], {"participant_id": ids[2]})
        # An image and a file of theirs, and someone else's image.
        media = [
            upload_sync(client, tokens, png(), "a.png"),
            upload_sync(client, tokens, b"notes\n", "a.txt"),
            upload_sync(client, peer["tokens"], png(8, 8), "b.png"),
        ]
    return Caller(tokens, [direct, group, foreign], ids, media)


@pytest.fixture(scope="module")
def api_schema(live_server: LiveServer, caller: Caller) -> BaseSchema:
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json")
    # The server ignores query parameters it does not know, as HTTP servers do: a request
    # carrying one is not invalid input it must refuse.
    schema.config.generation.update(allow_extra_parameters=False)
    conversation_ids = st.sampled_from(caller.conversation_ids)
    user_ids = st.sampled_from(caller.user_ids)
    media_ids = st.sampled_from(caller.media_ids)
    real: dict[str, st.SearchStrategy[str]] = {
        "conversation_id": conversation_ids,
        "user_id": user_ids,
        "participant_id": user_ids,
        "media_id": media_ids,
        "avatar_media_id": media_ids,
    }

    def either(generated: Any, name: str) -> st.SearchStrategy[Any]:
        # Only a valid id is swapped for a real one: invalid input stays invalid.
        if name in real and is_uuid(generated):
            return st.one_of(st.just(generated), real[name])
        return st.just(generated)

    @schema.hook
    def flatmap_path_parameters(
        context: schemathesis.HookContext, parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[Any]:
        if not parameters:
            return st.just(parameters)
        return st.fixed_dictionaries({k: either(v, k) for k, v in parameters.items()})

    @schema.hook
    def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
        if not isinstance(body, dict):
            return st.just(body)
        fields = {k: either(v, k) for k, v in body.items()}
        for many in ("participant_ids", "user_ids", "recipient_ids"):
            ids = body.get(many)
            if isinstance(ids, list):
                # Item by item: the list keeps its length, valid or not.
                fields[many] = st.tuples(*(either(i, "user_id") for i in ids)).map(list)
        return st.fixed_dictionaries(fields)

    return schema


def fuzz_every_operation(
    schema: BaseSchema,
    headers: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
) -> None:
    """Each operation with valid and with invalid input, as a caller with these `headers`
    and `cookies` (given, never generated: invalid input is in the rest of the request).
    Every failing operation is named, with its smallest failing example, once all have run."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        takes_input = bool(operation.path_parameters or operation.query or operation.body)
        # An operation without parameters or a body has no invalid input to send.
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)[: 2 if takes_input else 1]
        for mode in modes:
            cases = operation.as_strategy(generation_mode=mode, headers=headers, cookies=cookies)

            @fuzz_settings(REST_EXAMPLES)
            @given(case=cases)
            def conforms(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=CHECKS)

            try:
                conforms()
            except FailedHealthCheck:
                if mode is GenerationMode.NEGATIVE and not (
                    operation.path_parameters or operation.body
                ):
                    # Its only inputs are free-form strings (the dashboard's token): no
                    # value of them is invalid, so Hypothesis finds none to send.
                    continue
                failures.append(f"{operation.label} ({mode.value} data): no input generated")
            except (FailureGroup, Exception) as exc:  # reported with the others below
                failures.append(f"{operation.label} ({mode.value} data):\n{exc}")
    assert not failures, "\n\n".join(failures)


def test_an_anonymous_caller_gets_only_documented_answers(api_schema: BaseSchema) -> None:
    fuzz_every_operation(api_schema)


def test_a_bearer_token_caller_gets_only_documented_answers(
    api_schema: BaseSchema, caller: Caller
) -> None:
    fuzz_every_operation(api_schema, headers=bearer(caller.tokens))


def test_a_cookie_caller_gets_only_documented_answers(
    api_schema: BaseSchema, caller: Caller, live_server: LiveServer
) -> None:
    # The browser's way: the httpOnly cookie, and an Origin of the server's own pages so
    # that writes pass the CSRF check and reach the handlers.
    fuzz_every_operation(
        api_schema,
        headers={"Origin": live_server.base_url},
        cookies={"access_token": caller.tokens["access_token"]},
    )
