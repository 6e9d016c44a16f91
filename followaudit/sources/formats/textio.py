"""Whole-file checks on raw bytes: binary content and text encoding (shared by the one-shot and
streaming readers)."""

from __future__ import annotations

from ...errors import BinaryInputError, EncodingError, InputError

BINARY_MAGIC = (b"PK\x03\x04", b"\x89PNG", b"\xff\xd8\xff", b"%PDF", b"SQLite format", b"BZh", b"\xfd7zXZ",
                b"7z\xbc\xaf", b"DUCK")


def check_not_binary(head: bytes, name: str) -> None:
    if head.startswith(BINARY_MAGIC) or (b"\x00" in head[:8192] and not head.startswith((b"\xff\xfe", b"\xfe\xff"))):
        raise BinaryInputError(f"{name} is not a text file (binary content)")


def to_utf8(data: bytes, name: str, encoding: str, line_offset: int = 0) -> bytes:
    """``data`` as UTF-8 bytes; a byte that is not valid ``encoding`` raises EncodingError with its line.

    ``line_offset`` is the number of lines before ``data`` in the file (for streamed blocks).
    """
    codec = encoding.lower().replace("_", "-")
    if codec in ("utf-8", "utf8"):
        if data.isascii():  # the common case, checked at memory speed
            return data
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _encoding_error(name, data, exc, "UTF-8", line_offset) from None
        return data
    try:
        text = data.decode(encoding)
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}", "use a Python codec name such as utf-8, latin-1, cp1252") from None
    except UnicodeDecodeError as exc:
        raise _encoding_error(name, data, exc, encoding, line_offset) from None
    return text.encode("utf-8")


def _encoding_error(name: str, data: bytes, exc: UnicodeDecodeError, codec: str, line_offset: int) -> EncodingError:
    line = line_offset + data.count(b"\n", 0, exc.start) + 1
    return EncodingError(f"{name} is not valid {codec} text: byte 0x{data[exc.start]:02x} on line {line}")
