"""Hypothesis strategies for the fuzz suite: near-valid inputs in each door's documented
format with hostile values put in (NUL, lone surrogates, huge and non-finite numbers, deep
nesting, wrong types, long strings), and raw garbage.

Cases are small descriptions (plain data); what is big (a 3 MB body, a 100,000-deep
document) is made when the case is sent (``encode``), so that generating ten thousand of them
costs little memory.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from hypothesis import strategies as st

from tests.conversations.payloads import HERE, load, raw

# --- Hostile values ----------------------------------------------------------------------


@dataclass(frozen=True)
class Deep:
    """A document nested ``depth`` levels deep, made when encoded."""

    depth: int


@dataclass(frozen=True)
class Huge:
    """A string of ``size`` characters, made when encoded."""

    size: int


SPECIAL_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "²",
    "٣",
    "١٢",
    "1e20",
    "1e300",
    "nan",
    "NaN",
    "inf",
    "-1",
    "0",
    "2e7",
    "1e9",
    "20000000",
    "9" * 30,
    "\u202e",
    "😀",
    "e\u0301",
    "\r\n",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00",
    "../../etc/passwd",
    "whatsapp:+1",
]
SPECIAL_NUMBERS = [
    0,
    -1,
    1,
    1.5,
    -0.0,
    1e20,
    1e300,
    -1e300,
    2**31,
    2**53 + 1,
    2**63,
    2**64,
    10**30,
    2e7,
    1e9,
    float("nan"),
    float("inf"),
]

surrogates_and_controls = st.text(
    alphabet=st.characters(codec=None, categories=["Cs", "Cc"]), min_size=1, max_size=8
)
long_strings = st.integers(201, 12_000).map(lambda n: "é" * n)
hostile_strings = st.one_of(
    st.sampled_from(SPECIAL_STRINGS),
    st.text(max_size=30),
    surrogates_and_controls,
    long_strings,
)
hostile_numbers = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)
wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.just([]),
    st.just({}),
    st.lists(st.integers(-5, 5), min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(-5, 5), min_size=1, max_size=2),
)
deep = st.one_of(
    st.integers(30, 40), st.sampled_from([500, 2000, 100_000]), st.integers(33, 3000)
).map(Deep)
# (one_of draws its branches alike: deep documents, refused whole, come one time in seven)
hostile = st.one_of(
    hostile_strings,
    hostile_strings,
    hostile_numbers,
    hostile_numbers,
    wrong_types,
    wrong_types,
    deep,
)

# Raw bodies no platform sends: not JSON, NaN, NUL escapes, deep, huge.
garbage_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b"{}",
            b"NaN",
            b'{"a": NaN}',
            b"1e999",
            b'"\\ud800"',
            b'{"x": "\\u0000"}',
            b"\xed\xa0\x80",
            b"\xff\xfe",
            b"[" * 100_000,
        ]
    ),
    st.integers(33, 100_000).map(Deep),
    st.sampled_from([3_000_000, 2_700_000]).map(Huge),
)


# --- Mutation of a documented payload -------------------------------------------------------


def _slots(document: Any, path: tuple = ()) -> list[tuple]:
    """Every place of a document a value can be put: (path to the container, key)."""
    slots = []
    if isinstance(document, dict):
        for key, value in document.items():
            slots.append((path, key))
            slots.extend(_slots(value, (*path, key)))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            slots.append((path, index))
            slots.extend(_slots(value, (*path, index)))
    return slots


def _container(document: Any, path: tuple) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def mutated(draw, template: Any, *, changes: tuple[int, int] = (1, 4)) -> Any:
    """The template with a few of its values replaced by hostile ones (or removed)."""
    document = copy.deepcopy(template)
    for _ in range(draw(st.integers(*changes))):
        slots = _slots(document)
        if not slots:
            break
        path, key = draw(st.sampled_from(slots))
        container = _container(document, path)
        if draw(st.integers(0, 9)) == 9 and isinstance(container, dict):
            del container[key]
        else:
            container[key] = draw(hostile)
    return document


def fresh(document: Any, key: str, prefix: str, new_id: str) -> Any:
    """A copy whose every ``key`` field (a message id) is new, so that it is stored."""
    document = copy.deepcopy(document)
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get(key), str):
                item[key] = f"{prefix}{new_id}{len(stack)}"
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return document


ids = st.uuids().map(lambda u: u.hex)


# --- Webhooks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookCase:
    """One signed webhook: a JSON document, a Twilio form, or raw bytes."""

    kind: str
    document: Any = None
    form: dict | None = None
    raw: bytes | Deep | Huge | None = None


def _templates(folder: str) -> list[Any]:
    return [load(f"{folder}/{p.name}") for p in sorted((HERE / folder).glob("*.json"))]


def _forms() -> list[dict]:
    return [
        dict(parse_qsl(raw(f"twilio/{p.name}").decode(), keep_blank_values=True))
        for p in sorted((HERE / "twilio").glob("*.form"))
    ]


@st.composite
def meta_batch(draw, kind: str) -> Any:
    """A WhatsApp or Messenger batch of good and bad events: [good, bad, good]..."""
    batch = load(f"{kind}/batch.json")
    if kind == "whatsapp":
        value = batch["entry"][0]["changes"][0]["value"]
        good = value["messages"][0]
        items = []
        for _ in range(draw(st.integers(1, 5))):
            one = fresh(good, "id", "wamid.FUZZ", draw(ids))
            items.append(draw(mutated(one)) if draw(st.booleans()) else one)
        value["messages"] = items
        return batch
    events = batch["entry"][0]["messaging"]
    good = next(e for e in events if "message" in e)
    items = []
    for _ in range(draw(st.integers(1, 5))):
        one = fresh(good, "mid", "m_FUZZ", draw(ids))
        items.append(draw(mutated(one)) if draw(st.booleans()) else one)
    batch["entry"][0]["messaging"] = items
    return batch


@st.composite
def meta_case(draw, kind: str) -> WebhookCase:
    templates = _templates(kind)
    template = fresh(
        draw(st.sampled_from(templates)), "id" if kind == "whatsapp" else "mid", "F", draw(ids)
    )
    document = draw(st.one_of(mutated(template), meta_batch(kind), st.just(template)))
    return WebhookCase(kind, document=document)


@st.composite
def telegram_case(draw) -> WebhookCase:
    template = copy.deepcopy(draw(st.sampled_from(_templates("telegram"))))
    template["update_id"] = draw(st.integers(1, 2**53))
    return WebhookCase("telegram", document=draw(st.one_of(mutated(template), st.just(template))))


@st.composite
def twilio_case(draw) -> WebhookCase:
    form = dict(draw(st.sampled_from(_forms())))
    form["MessageSid"] = "SM" + draw(ids)
    for _ in range(draw(st.integers(0, 4))):
        name = draw(
            st.one_of(
                st.sampled_from(sorted(form)),
                st.sampled_from(["NumMedia", "Latitude", "Longitude", "ProfileName", "From"]),
                st.text(max_size=10),
            )
        )
        value = draw(st.one_of(hostile_strings, st.sampled_from(["2e7", "1000000000", "11"])))
        # A form is UTF-8 text on the wire: no lone surrogates (the raw cases send bad bytes).
        form[_utf8(name)] = _utf8(value)
    return WebhookCase("twilio", form=form)


def _utf8(text: str) -> str:
    return text.encode("utf-8", "replace").decode()


@st.composite
def api_case(draw) -> WebhookCase:
    good = {"id": "x", "from": "user-7", "name": "Ana", "text": "prices"}
    items = []
    for _ in range(draw(st.integers(1, 4))):
        one = {**good, "id": "ext-" + draw(ids)}
        items.append(draw(mutated(one)) if draw(st.booleans()) else one)
    document = draw(st.one_of(st.just({"messages": items}), mutated({"messages": items})))
    return WebhookCase("api", document=document)


def garbage_case(kind: str):
    return garbage_bodies.map(lambda body: WebhookCase(kind, raw=body))


webhook_cases = st.one_of(
    meta_case("whatsapp"),
    meta_case("messenger"),
    telegram_case(),
    twilio_case(),
    api_case(),
    st.sampled_from(["whatsapp", "messenger", "telegram", "twilio", "api"]).flatmap(garbage_case),
)


# --- Encoding ---------------------------------------------------------------------------------


def encode_json(document: Any) -> bytes:
    """JSON as a careless sender writes it (NaN allowed, surrogates escaped), with the
    ``Deep`` and ``Huge`` placeholders made."""
    marks: dict[str, str] = {}

    def placeholder(value):
        if isinstance(value, Deep):
            mark = f"@@deep{len(marks)}@@"
            marks[f'"{mark}"'] = "[" * value.depth + "]" * value.depth
            return mark
        if isinstance(value, Huge):
            mark = f"@@huge{len(marks)}@@"
            marks[f'"{mark}"'] = '"' + "x" * value.size + '"'
            return mark
        raise TypeError(type(value))

    text = json.dumps(document, default=placeholder)
    for mark, replacement in marks.items():
        text = text.replace(mark, replacement)
    return text.encode("utf-8", "surrogatepass")


def encode_raw(body: bytes | Deep | Huge) -> bytes:
    if isinstance(body, Deep):
        return b"[" * body.depth + b"]" * body.depth
    if isinstance(body, Huge):
        return b'{"text": "' + b"x" * body.size + b'"}'
    return body


# --- The REST API -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # with {name} placeholders
    query: tuple[str, ...]
    body: dict | None  # the request body's JSON schema, resolved


@dataclass(frozen=True)
class RestCase:
    operation: int
    path_values: dict = field(default_factory=dict)
    query: dict = field(default_factory=dict)
    body: Any = None
    raw: bytes | Deep | Huge | None = None
    content_type: str = "application/json"


HOSTILE_PATH_VALUES = [
    "²",
    "٣",
    "-1",
    "0",
    "1.5",
    "1e3",
    "abc",
    "99999999999999999999",
    "9223372036854775808",
    "%00",
    "%F0%9F%98%80",
    "%ED%A0%80",
]
HOSTILE_QUERY_VALUES = [
    *HOSTILE_PATH_VALUES,
    "",
    "2026-13-45",
    "9999-12-31",
    "0001-01-01",
    "1e20",
    "nan",
    "\x00",
    "a" * 5000,
]


def operations(schema: dict) -> list[Operation]:
    """Every operation of /api/v1 in the OpenAPI schema, request bodies resolved."""
    components = schema.get("components", {}).get("schemas", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(components[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    found = []
    for path, methods in sorted(schema["paths"].items()):
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in sorted(methods.items()):
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            query = tuple(
                p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"
            )
            content = operation.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            found.append(Operation(method.upper(), path, query, resolve(body) if body else None))
    return found


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=10)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def from_schema(schema: dict | None, ids: list[int]) -> st.SearchStrategy:
    """Values of a JSON schema (valid ones, and hostile ones in their place)."""
    return st.one_of(_valid(schema or {}, ids), _valid(schema or {}, ids), hostile)


def _valid(schema: dict, ids: list[int]) -> st.SearchStrategy:
    for key in ("allOf", "oneOf", "anyOf"):
        if schema.get(key):
            return st.one_of(*[_valid(part, ids) for part in schema[key]])
    if "enum" in schema:
        return st.sampled_from([v for v in schema["enum"] if v is not None] or [None])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "string":
        form = schema.get("format")
        if form == "date-time":
            return st.datetimes().map(lambda d: d.isoformat() + "Z")
        if form == "date":
            return st.dates().map(str)
        if form == "email":
            return st.emails()
        return st.text(max_size=schema.get("maxLength") or 40)
    if kind == "integer":
        return st.one_of(st.sampled_from(ids or [1]), st.integers(0, 10))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(from_schema(schema.get("items"), ids), max_size=3)
    properties = schema.get("properties")
    if properties:
        values = {
            name: from_schema(part, ids)
            for name, part in properties.items()
            if not part.get("readOnly")
        }
        required = [name for name in schema.get("required", []) if name in values]
        optional = {name: s for name, s in values.items() if name not in required}
        return st.fixed_dictionaries({name: values[name] for name in required}, optional=optional)
    return json_values


@st.composite
def rest_case(draw, ops: list[Operation], world_ids: dict[str, list[int]]) -> RestCase:
    index = draw(st.integers(0, len(ops) - 1))
    operation = ops[index]
    every_id = sorted({i for values in world_ids.values() for i in values})
    path_values = {}
    for name in _placeholders(operation.path):
        resource = _resource(operation.path, name)
        valid = world_ids.get(resource) or every_id or [1]
        path_values[name] = draw(
            st.one_of(
                st.sampled_from([str(v) for v in valid]),
                st.sampled_from([str(v) for v in valid]),
                st.sampled_from(HOSTILE_PATH_VALUES),
            )
        )
    query = {}
    for name in operation.query:
        if draw(st.integers(0, 2)) == 0:
            query[name] = draw(
                st.one_of(
                    st.sampled_from([str(v) for v in every_id] or ["1"]),
                    st.sampled_from(HOSTILE_QUERY_VALUES),
                    st.sampled_from(["1", "2", "200", "201", "2026-01-01", "csv", "open"]),
                )
            )
    body, raw_body, content_type = None, None, "application/json"
    if operation.method in ("POST", "PUT", "PATCH"):
        shape = draw(st.integers(0, 9))
        if shape == 9:
            raw_body = draw(garbage_bodies)
        elif shape == 8:
            content_type = draw(
                st.sampled_from(["text/plain", "application/x-www-form-urlencoded"])
            )
            raw_body = b"a=1&b=\x00"
        else:
            body = draw(from_schema(operation.body, every_id))
    return RestCase(index, path_values, query, body, raw_body, content_type)


def _placeholders(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _resource(path: str, name: str) -> str:
    """The collection an id of a path names: /api/v1/<resource>/{id}/, {bot_pk} -> bots."""
    parts = [p for p in path.split("/") if p]
    if name == "bot_pk":
        return "bots"
    if name == "number":
        return "versions"
    at = parts.index("{" + name + "}")
    return parts[at - 1]


# --- The sockets --------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameCase:
    """One frame: a JSON object (``content``), or raw text or bytes."""

    content: Any = None
    text: str | None = None
    data: bytes | None = None


def _mostly(valid: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(valid, valid, valid, hostile)


WIDGET_TYPES = {
    "start": ["fields"],
    "message": ["client_id", "text"],
    "quick_reply": ["client_id", "title", "payload"],
    "typing": ["on"],
    "read": ["id"],
    "history": ["before"],
    "contact": ["fields"],
    "rating": ["score"],
}
WIDGET_FIELDS = {
    "client_id": _mostly(ids),
    "text": _mostly(st.one_of(st.sampled_from(["hello", "how much is it"]), st.text(max_size=50))),
    "title": _mostly(st.just("Prices")),
    "payload": _mostly(st.sampled_from(["PRICES", "YES"])),
    "on": _mostly(st.booleans()),
    "id": _mostly(st.integers(1, 10**6)),
    "before": _mostly(st.integers(1, 10**6)),
    "score": _mostly(st.integers(1, 5)),
    "fields": _mostly(
        st.one_of(
            st.dictionaries(st.sampled_from(["name", "email", "phone"]), st.text(max_size=20)),
            st.dictionaries(st.text(max_size=8), hostile, max_size=3),
        )
    ),
}
CONSOLE_TYPES = {
    "heartbeat": [],
    "presence": ["presence"],
    "open": ["conversation"],
    "claim": ["conversation"],
    "take_over": ["conversation"],
    "reply": ["conversation", "text"],
    "note": ["conversation", "text"],
    "typing": ["conversation", "on"],
    "transfer": ["conversation", "agent", "team"],
    "resolve": ["conversation"],
    "hand_back": ["conversation", "node"],
}


def _frame(types: dict[str, list[str]], fields: dict) -> st.SearchStrategy:
    """Frames of the documented types with their own fields (each valid or hostile), a few
    other fields, frames of no type, and raw text or bytes."""

    @st.composite
    def build(draw) -> FrameCase:
        kind = draw(st.sampled_from(sorted(types)))
        # (Hypothesis draws small numbers more often: the rare branch is the largest)
        content = {"type": kind if draw(st.integers(0, 9)) < 9 else draw(hostile)}
        for name in types[kind]:
            if draw(st.integers(0, 4)) < 4:
                content[name] = draw(fields[name])
        for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=1)):
            content[name] = draw(fields[name])
        return FrameCase(content=content)

    raw_frames = st.one_of(
        st.text(max_size=50).map(lambda t: FrameCase(text=t)),
        st.sampled_from(
            ["{", "NaN", "[]", "null", '{"type": NaN}', '"\\ud800"', "[" * 5000 + "]" * 5000]
        ).map(lambda t: FrameCase(text=t)),
        st.integers(20_000, 40_000).map(lambda n: FrameCase(text='{"type":"' + "x" * n + '"}')),
        st.binary(max_size=20).map(lambda b: FrameCase(data=b)),
    )
    return st.one_of(build(), build(), build(), build(), build(), raw_frames)


def widget_frames() -> st.SearchStrategy:
    return _frame(WIDGET_TYPES, WIDGET_FIELDS)


def console_frames(conversations: list[int], agents: list[int]) -> st.SearchStrategy:
    some_id = st.sampled_from(conversations or [1])
    fields = {
        "conversation": st.one_of(some_id, some_id, some_id.map(str), hostile),
        "text": _mostly(st.one_of(st.sampled_from(["On it.", "/thanks"]), st.text(max_size=50))),
        "presence": _mostly(st.sampled_from(["online", "away", "offline"])),
        "on": _mostly(st.booleans()),
        "agent": _mostly(st.sampled_from(agents or [1])),
        "team": hostile,
        "node": _mostly(st.just("start")),
        "ref": _mostly(ids),
    }
    return _frame(CONSOLE_TYPES, fields)


def frame_text(case: FrameCase) -> tuple[str | None, bytes | None]:
    """What goes on the wire: a text frame (JSON as a careless client writes it) or bytes."""
    if case.data is not None:
        return None, case.data
    if case.text is not None:
        return case.text, None
    return encode_json(case.content).decode("utf-8", "surrogatepass"), None


def new_client_id() -> str:
    return uuid.uuid4().hex
