"""The one JSON decoder for request bodies and socket messages: encoding, depth and code points.

The standard decoder accepts what no route can use and some of it ends in a 500: bytes that are
not UTF-8 (raw surrogate halves), nesting a recursive walk cannot follow, escapes of lone
surrogates that no database can store, and noncharacters that an XML sheet cannot hold. Every
JSON route (through BodyLimits) and every websocket message is decoded here, so each gets the
same answer: a `BadJson` with a status, a stable code and a sentence.
"""

import json
import re
from typing import Any

# Deeper than any body of the API (an archive's rows are 4 levels deep) by a wide margin.
MAX_DEPTH = 32
# U+FFFE and U+FFFF are not XML 1.0 characters; U+FDD0-U+FDEF and the last two of every plane
# are the other Unicode noncharacters: never text anyone typed, refused alike.
_PLANE_ENDS = "".join(chr(plane << 16 | low) for plane in range(1, 17) for low in (0xFFFE, 0xFFFF))
_REFUSED = re.compile(f"[\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff{_PLANE_ENDS}]")


class BadJson(Exception):
    """A body or message the decoder refuses: status, code and a sentence saying what to fix."""

    def __init__(self, detail: str, *, code: str, status: int = 422) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.status = status


def decode(data: bytes | str) -> Any:
    """The JSON value, or BadJson saying what is wrong with it."""
    value = load(data)
    check(value)
    return value


def load(data: bytes | str) -> Any:
    """The JSON value, refused only for its encoding, syntax or a nesting the parser cannot
    follow: a caller that must read a field (a socket message's client_ref) before `check`."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadJson(
                f"The body is not valid UTF-8 (byte {exc.start}); send the text as UTF-8.",
                code="invalid_encoding",
                status=400,
            ) from None
    try:
        value = json.loads(data)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:
        raise BadJson(f"The body is not valid JSON: {exc}.", code="invalid_json") from None
    return value


def check(value: Any) -> None:
    """Refuse nesting deeper than MAX_DEPTH and strings (keys too) with refused code points."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise _too_deep()
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def refused_character(text: str) -> str | None:
    """The first code point no text of the app may hold (a surrogate or a noncharacter), if any."""
    found = _REFUSED.search(text)
    return found.group() if found else None


def _check_text(text: str) -> None:
    char = refused_character(text)
    if char is None:
        return
    if 0xD800 <= ord(char) <= 0xDFFF:
        raise BadJson(
            "The text contains an unpaired surrogate escape (\\uD800–\\uDFFF), which is not a "
            "character; send the text as UTF-8 or escape both halves of the pair.",
            code="invalid_character",
        )
    raise BadJson(
        f"The text contains U+{ord(char):04X}, a Unicode noncharacter that documents cannot "
        "hold; remove it.",
        code="invalid_character",
    )


def _too_deep() -> BadJson:
    return BadJson(
        f"The JSON is nested more than {MAX_DEPTH} levels deep; send a flatter document.",
        code="too_deep",
    )
