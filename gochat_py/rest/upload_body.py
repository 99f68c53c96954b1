"""An upload's bytes as they arrive, from either body an upload may have: a
`multipart/form-data` form whose `file` field holds the file (read with python-multipart's
streaming parser), or the raw file as the whole body. Neither is ever held whole: the use
case gets the bytes chunk by chunk, as the client sends them."""

from __future__ import annotations

from collections.abc import AsyncIterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from gochat_py.errors import BadRequest, PayloadTooLarge

FILE_FIELD = "file"
# The form around the file (boundaries, part headers, small fields) never needs more.
FORM_OVERHEAD_BYTES = 64 * 1024


class UploadBody:
    """The file's name and type as the client gave them (None when it gave none), and its
    bytes."""

    def __init__(
        self, name: str | None, declared_type: str | None, chunks: AsyncIterator[bytes]
    ) -> None:
        self.name = name
        self.declared_type = declared_type
        self.chunks = chunks


async def upload_body(request: Request, max_bytes: int) -> UploadBody:
    """The file of `request`; PayloadTooLarge at once when its Content-Length says it
    cannot fit, BadRequest for a form without a `file` field or a malformed one."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    multipart = content_type == b"multipart/form-data"
    declared = request.headers.get("content-length", "")
    limit = max_bytes + (FORM_OVERHEAD_BYTES if multipart else 0)
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"a file may have at most {max_bytes:,} bytes", code="file_too_large")
    if not multipart:
        declared_type = content_type.decode("latin-1") or None
        return UploadBody(request.query_params.get("name"), declared_type, request.stream())
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data needs a boundary", code="malformed_form")
    return await _form_file(request, boundary)


class _FormReader:
    """python-multipart's callbacks, collected per chunk fed: the file part's name, its
    data, and whether it has ended."""

    def __init__(self, boundary: bytes) -> None:
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )
        self.file_found = False
        self.file_name: str | None = None
        self.file_type: str | None = None
        self.file_ended = False
        self.data: list[bytes] = []  # of the file, since the last chunk was taken
        self._in_file = False
        self._field = bytearray()
        self._value = bytearray()
        self._disposition = b""
        self._part_type = b""

    def _part_begin(self) -> None:
        self._disposition = b""
        self._part_type = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        field = self._field.lower()
        if field == b"content-disposition":
            self._disposition = bytes(self._value)
        elif field == b"content-type":
            self._part_type = parse_options_header(bytes(self._value))[0]
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        self._in_file = not self.file_found and params.get(b"name") == FILE_FIELD.encode()
        if self._in_file:
            self.file_found = True
            filename = params.get(b"filename")
            self.file_name = None if filename is None else filename.decode("utf-8", "replace")
            self.file_type = self._part_type.decode("latin-1") or None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.data.append(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self.file_ended = True

    def feed(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except MultipartParseError as exc:
            raise BadRequest(f"malformed multipart form: {exc}", code="malformed_form") from None


async def _form_file(request: Request, boundary: bytes) -> UploadBody:
    reader = _FormReader(boundary)
    stream = request.stream()
    # Up to the file part's headers: what comes before it is small form fields.
    async for chunk in stream:
        reader.feed(chunk)
        if reader.file_found:
            break
    if not reader.file_found:
        raise BadRequest(f"the form has no `{FILE_FIELD}` field", code="missing_file")

    async def file_chunks() -> AsyncIterator[bytes]:
        while True:
            for data in reader.data:
                yield data
            reader.data.clear()
            if reader.file_ended:
                return
            chunk = await anext(stream, None)
            if chunk is None:
                raise BadRequest("the form ends inside the file", code="malformed_form")
            reader.feed(chunk)

    return UploadBody(reader.file_name, reader.file_type, file_chunks())
