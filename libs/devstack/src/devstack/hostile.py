"""Hypothesis strategies for close-to-valid hostile request bodies, shared by every app's tests.

Each strategy starts from a body the app accepts and breaks one thing the way a hostile client would: a number
no parser should hold (4,301 digits, ``1e999999``), nesting thousands deep, duplicate keys, bytes that are not
UTF-8, NUL bytes, a truncated document, the wrong content type or a multipart type without its boundary.
Bodies are bytes, rendered by hand: ``json.dumps`` cannot even write most of them.

A test sends them over real HTTP and asserts the app's contract: a 4xx with a code, or a 503 with
Retry-After; never a 500; nothing written. (Imported by tests only: the runtime kit never needs hypothesis.)
"""

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
from hypothesis import strategies as st

HUGE_DIGITS = 4_301  # one over Python's int-from-string limit (sys.get_int_max_str_digits)
DEEP = 5_000

# JSON tokens that are well formed, or nearly, and hostile in the value they carry.
HOSTILE_JSON_TOKENS: tuple[bytes, ...] = (
    b"9" * HUGE_DIGITS,
    b"-" + b"9" * HUGE_DIGITS,
    b"1e999999",
    b"-1e999999",
    b"1e-999999",
    b"1" + b"0" * 400 + b".5",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"9223372036854775808",  # bigint + 1
    b"-9223372036854775809",
    b"2147483648",  # int32 + 1
    b"0.5",
    b"-0",
    b"1.0",
    b"true",
    b"null",
    b'""',
    b'"\\u0000"',
    b'"a\\u0000b"',
    b'"\\ud800"',  # a lone surrogate: valid JSON, not valid Unicode
    b'"\xff\xfe"',  # raw bytes that are not UTF-8
    b'"' + b"x" * 10_000 + b'"',
    b"[]",
    b"{}",
    b"[" * DEEP + b"]" * DEEP,
    b'{"a":' * DEEP + b"1" + b"}" * DEEP,
)

# Content types a JSON endpoint may be sent, each wrong or odd in its own way (None: no header at all).
HOSTILE_CONTENT_TYPES: tuple[str | None, ...] = (
    None,
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data;boundary=x",
    "application/json; charset=utf-16",
    "application/json; charset=latin-1",
    'application/json; charset="',
    "application/xml",
    "application/",
    ";;;",
    "application/json" + "; a=b" * 200,
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value a token can go: the root, and each member and element below it."""
    found = [here]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*here, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*here, index))
    return found


def render(
    value: Any, *, at: tuple[Any, ...] | None = None, token: bytes = b"", duplicate: bool = False
) -> bytes:
    """``value`` as JSON bytes, with ``token`` written verbatim at path ``at``; ``duplicate`` repeats each
    object's first member with the token as its value (``{"a": 1, "a": <token>}``)."""
    if at == ():
        return token
    inner = at[1:] if at else None

    def child(key: Any, item: Any) -> bytes:
        below = inner if at and at[0] == key else None
        return render(item, at=below, token=token, duplicate=duplicate)

    if isinstance(value, dict):
        members = [json.dumps(key).encode() + b":" + child(key, item) for key, item in value.items()]
        if duplicate and value:
            first = next(iter(value))
            members.append(json.dumps(first).encode() + b":" + token)
        return b"{" + b",".join(members) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(child(index, item) for index, item in enumerate(value)) + b"]"
    return json.dumps(value).encode()


def hostile_json(valid: Any) -> st.SearchStrategy[bytes]:
    """Bodies one step from ``valid`` (a JSON value the endpoint accepts): a hostile token at any path, a
    duplicate key, a document wrapped thousands deep, non-UTF-8 or NUL bytes spliced in, a truncation, a
    byte-order mark."""
    plain = render(valid)
    paths = _paths(valid)
    token = st.sampled_from(HOSTILE_JSON_TOKENS)
    replaced = st.builds(lambda at, t: render(valid, at=at, token=t), st.sampled_from(paths), token)
    duplicated = st.builds(lambda t: render(valid, token=t, duplicate=True), token)
    wrapped = st.builds(
        lambda depth, opener, closer: opener * depth + plain + closer * depth,
        st.sampled_from([64, 1_000, DEEP, 50_000]),
        st.just(b"["),
        st.just(b"]"),
    )
    spliced = st.builds(
        lambda position, junk: plain[:position] + junk + plain[position:],
        st.integers(0, len(plain)),
        st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\\u0000", b"\x1b[0m"]),
    )
    truncated = st.builds(lambda end: plain[:end], st.integers(0, max(len(plain) - 1, 0)))
    odd = st.sampled_from(
        [b"\xef\xbb\xbf" + plain, plain.decode().encode("utf-16"), b"", b"\x00" * 16, b"null"]
    )
    return st.one_of(replaced, duplicated, wrapped, spliced, truncated, odd)


def hostile_json_requests(valid: Any) -> st.SearchStrategy[tuple[str | None, bytes]]:
    """(content type, body): mostly a hostile body sent as JSON, sometimes a valid body under a wrong type."""
    as_json = st.tuples(st.just("application/json"), hostile_json(valid))
    mislabelled = st.tuples(st.sampled_from(HOSTILE_CONTENT_TYPES), st.just(render(valid)))
    return st.one_of(as_json, as_json, mislabelled)


# Form values as a hostile person types or forges them.
HOSTILE_FORM_VALUES: tuple[bytes, ...] = (
    b"",
    b"abc",
    b"-1",
    b"0",
    b"1e999999",
    b"-1e999999",
    b"1e-999999",
    b"9" * HUGE_DIGITS,
    b"NaN",
    b"Infinity",
    b"sNaN",
    b"1_000",
    b"\xd9\xa1",  # ARABIC-INDIC DIGIT ONE (isdigit() says yes)
    b"12.345",
    b"0x10",
    b"\x00",
    b"1\x002",
    b"\xff\xfe",  # not UTF-8
    b"x" * 10_000,
    b" 1 ",
    b"\xe2\x80\xae1",  # a right-to-left override
)


def _urlencoded(fields: list[tuple[str, bytes]]) -> bytes:
    return b"&".join(
        quote_from_bytes(name.encode()).encode() + b"=" + quote_from_bytes(value).encode()
        for name, value in fields
    )


def hostile_forms(
    valid: dict[str, str], *, keep: frozenset[str] = frozenset()
) -> st.SearchStrategy[tuple[str, bytes]]:
    """(content type, body) for a form the app accepts as ``valid``; fields named in ``keep`` (a CSRF token)
    stay as they are so the request reaches the route rather than the CSRF check.

    One field gets a hostile value, is dropped, or is repeated with another value; or the body is broken as a
    whole: raw bytes that are not UTF-8, bad percent-escapes, multipart without (or with a wrong) boundary."""
    names = [name for name in valid if name not in keep]
    base = [(name, value.encode()) for name, value in valid.items()]

    def with_value(name: str, value: bytes) -> bytes:
        return _urlencoded([(n, value if n == name else v) for n, v in base])

    form = "application/x-www-form-urlencoded"
    if names:
        one_field = st.one_of(
            st.builds(with_value, st.sampled_from(names), st.sampled_from(HOSTILE_FORM_VALUES)),
            st.builds(
                lambda name: _urlencoded([(n, v) for n, v in base if n != name]), st.sampled_from(names)
            ),
            st.builds(
                lambda name, value: _urlencoded([*base, (name, value)]),
                st.sampled_from(names),
                st.sampled_from(HOSTILE_FORM_VALUES),
            ),
        )
        raw = st.builds(
            lambda name, junk: (
                _urlencoded([(n, v) for n, v in base if n != name]) + b"&" + name.encode() + b"=" + junk
            ),
            st.sampled_from(names),
            st.sampled_from([b"%ff", b"%", b"%zz", b"\xff", b"%00", b"\x00", b"%e2%80"]),
        )
        urlencoded = st.tuples(st.just(form), st.one_of(one_field, raw))
    else:
        urlencoded = st.tuples(st.just(form), st.just(_urlencoded(base)))
    whole = st.tuples(
        st.sampled_from(
            [
                "multipart/form-data",
                "multipart/form-data; boundary=",
                "multipart/form-data;boundary=x",
                "multipart/form-data; boundary=nope",
                "application/json",
                "text/plain",
                form + "; charset=utf-16",
            ]
        ),
        st.sampled_from([_urlencoded(base), b"--x\r\n\r\n", b"\xff\xfe\x00", b"{}"]),
    )
    return st.one_of(urlencoded, urlencoded, whole)


def assert_refused_well(response: httpx.Response) -> None:
    """The contract for a hostile request: never a 5xx but a 503 with Retry-After; every refusal is
    problem+json with a machine ``code``."""
    if response.status_code == 503:
        assert response.headers.get("retry-after"), response.text[:300]
    else:
        assert response.status_code < 500, response.text[:300]
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.headers
        assert response.json()["code"], response.text[:300]


def fuzz_hostile_json(
    base_url: str,
    method: str,
    path: str,
    valid: Any,
    *,
    snapshot: Callable[[], object],
    headers: Callable[[], dict[str, str]] = dict,
    max_examples: int = 80,
) -> None:
    """Send ``hostile_json_requests(valid)`` to ``method path`` over real HTTP. Each answer keeps
    :func:`assert_refused_well`, and a refusal leaves ``snapshot()`` (e.g. row counts) unchanged; a body that
    turns out valid after all may be accepted. ``headers()`` adds headers per request (a fresh
    Idempotency-Key)."""
    from hypothesis import HealthCheck, given, settings

    @given(request=hostile_json_requests(valid))
    @settings(
        max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def run(request: tuple[str | None, bytes]) -> None:
        content_type, body = request
        sent = headers() | ({"content-type": content_type} if content_type else {})
        before = snapshot()
        response = httpx.request(method, f"{base_url}{path}", content=body, headers=sent, timeout=30)
        assert_refused_well(response)
        if not response.is_success:
            assert snapshot() == before, (response.status_code, response.text[:300])

    run()
