"""Tool-call arguments: streamed as they arrive, never unparseable, repaired when broken.

The client (the SDK, Claude Code) concatenates every `input_json_delta` of a block and
parses the result, in the Python SDK after *every* delta: one byte that is not a valid
JSON prefix breaks its stream. Models do send broken arguments (raw newlines inside
strings, `'single quotes'`, `True`, trailing commas, two objects glued together, JSON
cut off by `max_tokens`, an object double-encoded as a string). So `ToolArguments` sits
between the upstream's fragments and the client:

* **While the text is valid** it passes through as it arrives (whitespace outside strings
  dropped). Small, local faults are fixed on the fly without holding anything back: a raw
  control character in a string is escaped, `\\'` becomes `'`, a trailing comma before a
  closing bracket is dropped, a lone surrogate escape becomes U+FFFD.
* **Only what could still turn out wrong is held back**, and only briefly: a top-level
  member is sent once its `"key":` is complete (so a key is never sent half-made), an
  escape once it is complete, and the final `}` until the block ends.
* **When the text stops being valid JSON** nothing more is sent for it. At the end of the
  block the whole raw text is repaired with `json_repair`, and the rest is sent as
  top-level members appended before the held-back `}`: each member whose value differs
  from what the client already has, again, in full. JSON parsers keep the last of
  duplicate keys (JSON.parse, jiter, orjson), so the client's final input is exactly the
  repaired object; an open value is first closed with placeholders that the same
  override then replaces. If nothing had been sent yet, the repaired object is sent whole.

The trade-off: valid arguments (nearly all) stream with no delay; broken ones stop
streaming at the first fault and arrive in one piece at the end of their block, and in
that rare case the raw text the client assembled repeats a key. The alternative, holding
every block until it is complete, would delay every tool call to fix a few.

At the end of the block the object is checked against the tool's `input_schema`:
top-level values a model double-encoded (`"[{...}]"` for an array) or quoted (`"5"` for
an integer) are converted, then the schema is validated (jsonschema); what was repaired
or stayed invalid is counted per tool (`/tool-metrics`) and logged, never fatal.

The result depends only on the upstream's text, not on how it was split into chunks, so
a stream and a non-stream answer with the same arguments give the same `input`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import orjson
import structlog
from json_repair import repair_json

log = structlog.get_logger("oas.tools")

# Scanner states.
_START, _OBJ_FIRST, _KEY, _KEY_STR, _COLON, _VALUE, _ARR_FIRST = range(7)
_STR, _NUM, _LIT, _AFTER, _DONE = range(7, 12)

_STR_RUN = re.compile(r'[^"\\\x00-\x1f]+')
_WS = frozenset(" \t\n\r")
_SIMPLE_ESCAPES = frozenset('"\\/bfnrt')
_HEX = frozenset("0123456789abcdefABCDEF")
_CONTROL = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_LITERALS = {"t": "rue", "f": "alse", "n": "ull"}

# Number grammar: state -> {character class -> next state}; terminal states end a number.
_N_SIGN, _N_ZERO, _N_INT, _N_DOT, _N_FRAC, _N_E, _N_ESIGN, _N_EXP = range(8)
_NUM_NEXT: dict[int, dict[str, int]] = {
    _N_SIGN: {"0": _N_ZERO, "d": _N_INT},
    _N_ZERO: {".": _N_DOT, "e": _N_E},
    _N_INT: {"0": _N_INT, "d": _N_INT, ".": _N_DOT, "e": _N_E},
    _N_DOT: {"0": _N_FRAC, "d": _N_FRAC},
    _N_FRAC: {"0": _N_FRAC, "d": _N_FRAC, "e": _N_E},
    _N_E: {"0": _N_EXP, "d": _N_EXP, "+": _N_ESIGN, "-": _N_ESIGN},
    _N_ESIGN: {"0": _N_EXP, "d": _N_EXP},
    _N_EXP: {"0": _N_EXP, "d": _N_EXP},
}
_NUM_TERMINAL = frozenset({_N_ZERO, _N_INT, _N_FRAC, _N_EXP})
_NUM_CLASS = {"0": "0", ".": ".", "e": "e", "E": "e", "+": "+", "-": "-", **{d: "d" for d in "123456789"}}


class ToolArguments:
    """One tool call's arguments, as text the client can always parse.

    `feed()` each upstream fragment and send what it returns; `finish()` once at the end
    of the block and send that too. Afterwards `value` is the input object and
    `repaired` / `invalid` / `problems` say what happened.
    """

    def __init__(self, name: str, schema: dict[str, Any] | None = None, known: bool = True) -> None:
        self.name = name
        self.schema = schema
        self.known = known
        self.value: dict[str, Any] = {}
        self.repaired = False
        self.invalid = False
        self.problems: list[str] = []
        self._raw: list[str] = []
        self._sent: list[str] = []
        self._sent_len = 0
        self._state = _START
        self._stack: list[str] = []
        self._diverged = False
        self._holding = False  # building a top-level member's `,"key":` prefix
        self._held: list[str] = []
        self._pending_comma = False  # a comma inside a nested container, sent with what follows
        self._escape = ""  # an escape sequence in progress
        self._high = ""  # a high surrogate escape waiting for its low half
        self._num = _N_INT
        self._literal = ""
        self._members = 0  # top-level members sent (complete or open)
        self._member_end = 0  # sent length after the last complete top-level member
        self._open_key: str | None = None

    @property
    def complete(self) -> bool:
        """The top-level object has closed (only the held-back `}` is left to send)."""
        return self._state == _DONE

    @property
    def settled(self) -> bool:
        """Nothing more will be sent before `finish()`: complete, or no longer valid."""
        return self._state == _DONE or self._diverged

    # -- streaming ---------------------------------------------------------------------

    def feed(self, fragment: str) -> str:
        """The text to send now for this upstream fragment (often all of it)."""
        if not fragment:
            return ""
        self._raw.append(fragment)
        if self._diverged or self._state == _DONE:
            if self._state == _DONE and not self._diverged and fragment.strip():
                self._note("text after the end of the object was ignored")
                self._diverged = True
            return ""
        out: list[str] = []
        self._scan(fragment, out)
        text = "".join(out)
        if text:
            self._sent.append(text)
            self._sent_len += len(text)
        return text

    def _put(self, out: list[str], text: str) -> None:
        if self._holding:
            self._held.append(text)
        else:
            out.append(text)

    def _note(self, problem: str) -> None:
        self.repaired = True
        if problem not in self.problems:
            self.problems.append(problem)

    def _diverge(self) -> None:
        self._diverged = True
        self._note("the arguments were not valid JSON")

    def _scan(self, text: str, out: list[str]) -> None:  # noqa: C901 - one state machine
        i, n = 0, len(text)
        while i < n:
            state = self._state
            if state == _STR or state == _KEY_STR:
                if self._escape or self._high:
                    i = self._escape_char(text, i, out)
                    continue
                match = _STR_RUN.match(text, i)
                if match is not None:
                    self._put(out, match.group())
                    i = match.end()
                    continue
                c = text[i]
                i += 1
                if c == '"':
                    self._put(out, c)
                    if state == _KEY_STR:
                        self._state = _COLON
                    else:
                        self._value_done(out)
                elif c == "\\":
                    self._escape = c
                else:  # a raw control character: JSON wants it escaped
                    self._put(out, _CONTROL.get(c) or f"\\u{ord(c):04x}")
                    self._note("a control character inside a string was escaped")
                continue
            c = text[i]
            if state == _NUM:
                nxt = _NUM_NEXT[self._num].get(_NUM_CLASS.get(c, ""))
                if nxt is not None:
                    self._num = nxt
                    self._put(out, c)
                    i += 1
                    continue
                if self._num not in _NUM_TERMINAL:
                    return self._diverge()
                self._value_done(out)
                continue
            if state == _LIT:
                if c != self._literal[0]:
                    return self._diverge()
                self._put(out, c)
                self._literal = self._literal[1:]
                i += 1
                if not self._literal:
                    self._value_done(out)
                continue
            if c in _WS:
                i += 1
                continue
            i += 1
            if state == _AFTER:
                top = self._stack[-1]
                if c == ",":
                    if top == "[":
                        self._state = _VALUE
                        self._pending_comma = True
                    elif len(self._stack) == 1:
                        self._state = _KEY
                        self._holding = True
                        self._held = [","]
                    else:
                        self._state = _KEY
                        self._pending_comma = True
                elif (c == "}" and top == "{") or (c == "]" and top == "["):
                    self._close(out, c)
                else:
                    return self._diverge()
            elif state in (_VALUE, _ARR_FIRST):
                if c == "]" and (state == _ARR_FIRST or self._pending_comma) and self._stack[-1] == "[":
                    if self._pending_comma:
                        self._pending_comma = False
                        self._note("a trailing comma was dropped")
                    self._close(out, c)
                    continue
                if not self._start_value(c, out):
                    return self._diverge()
            elif state in (_OBJ_FIRST, _KEY):
                if c == '"':
                    if len(self._stack) == 1 and not self._holding:
                        self._holding = True
                        self._held = []
                    elif self._pending_comma:
                        self._put(out, ",")
                        self._pending_comma = False
                    self._put(out, c)
                    self._state = _KEY_STR
                elif c == "}":
                    if state == _KEY:  # `{"a": 1,}`: drop the comma
                        self._holding = False
                        self._held = []
                        self._pending_comma = False
                        self._note("a trailing comma was dropped")
                    self._close(out, c)
                else:
                    return self._diverge()
            elif state == _COLON:
                if c != ":":
                    return self._diverge()
                self._state = _VALUE
                if self._holding:
                    held = "".join(self._held)
                    self._open_key = orjson.loads(held.lstrip(","))
                    self._holding = False
                    self._held = []
                    out.append(held + ":")
                    self._members += 1
                else:
                    self._put(out, c)
            elif state == _START:
                if c != "{":
                    return self._diverge()
                self._stack.append("{")
                self._state = _OBJ_FIRST
                out.append(c)
            else:  # _DONE: something after the object
                self._note("text after the end of the object was ignored")
                self._diverged = True
                return None
        return None

    def _start_value(self, c: str, out: list[str]) -> bool:
        if self._pending_comma:
            self._put(out, ",")
            self._pending_comma = False
        if c == '"':
            self._state = _STR
        elif c == "{":
            self._stack.append("{")
            self._state = _OBJ_FIRST
        elif c == "[":
            self._stack.append("[")
            self._state = _ARR_FIRST
        elif c in _NUM_CLASS and c not in ".e+":
            self._state = _NUM
            self._num = _N_SIGN if c == "-" else _N_ZERO if c == "0" else _N_INT
        elif c in _LITERALS:
            self._state = _LIT
            self._literal = _LITERALS[c]
        else:
            return False
        self._put(out, c)
        return True

    def _close(self, out: list[str], c: str) -> None:
        self._stack.pop()
        if not self._stack:
            self._state = _DONE  # the final `}` is sent by finish()
            return
        self._put(out, c)
        self._value_done(out)

    def _value_done(self, out: list[str]) -> None:
        self._state = _AFTER
        if len(self._stack) == 1:  # a top-level member is complete: where it ends
            self._member_end = self._sent_len + sum(map(len, out))
            self._open_key = None

    def _escape_char(self, text: str, i: int, out: list[str]) -> int:
        """Advance an escape sequence by one character; returns the next index."""
        c = text[i]
        escape = self._escape
        if not escape:  # a high surrogate is waiting; anything but `\` orphans it
            if c == "\\":
                self._escape = c
                return i + 1
            self._put(out, "\\ufffd")
            self._high = ""
            self._note("a lone surrogate was replaced")
            return i
        if escape == "\\":
            if c in _SIMPLE_ESCAPES and not self._high:
                self._escape = ""
                self._put(out, escape + c)
                return i + 1
            if c == "u":
                self._escape = "\\u"
                return i + 1
            self._escape = ""
            if self._high:
                self._put(out, "\\ufffd")
                self._high = ""
            if c == "'":
                self._put(out, "'")
                self._note("an invalid escape was fixed")
                return i + 1
            self._put(out, "\\\\")
            self._note("an invalid escape was fixed")
            return i  # the character itself is read again as string content
        if c in _HEX:
            escape += c
            if len(escape) < 6:
                self._escape = escape
                return i + 1
            self._escape = ""
            code = int(escape[2:], 16)
            if 0xD800 <= code <= 0xDBFF:
                if self._high:
                    self._put(out, "\\ufffd")
                    self._note("a lone surrogate was replaced")
                self._high = escape
            elif 0xDC00 <= code <= 0xDFFF:
                if self._high:
                    self._put(out, self._high + escape)
                    self._high = ""
                else:
                    self._put(out, "\\ufffd")
                    self._note("a lone surrogate was replaced")
            else:
                if self._high:
                    self._put(out, "\\ufffd")
                    self._high = ""
                    self._note("a lone surrogate was replaced")
                self._put(out, escape)
            return i + 1
        # `\u` with too few hex digits: keep the characters as text
        self._escape = ""
        self._put(out, "\\\\" + escape[1:])
        self._note("an invalid escape was fixed")
        return i

    # -- the end of the block ----------------------------------------------------------

    def finish(self) -> str:
        """The rest of the text: afterwards the client holds one complete JSON object."""
        complete = self._state == _DONE
        if self._sent_len == 0:
            target = self._checked(self._fallback())
            text = orjson.dumps(target).decode()
            self.value = target
        else:
            sent = "".join(self._sent)
            if complete:
                closing = ""
                have = orjson.loads(sent + "}")
                target = self._checked(have)
                changed = [k for k in target if k not in have or have[k] != target[k]]
            else:
                self._note("the arguments were cut off" if not self._diverged
                           else "the arguments were not valid JSON")
                closing = self._closing()
                try:  # what the client would hold if the object ended here
                    have = orjson.loads(sent + closing + "}")
                except orjson.JSONDecodeError:  # cannot happen; stay safe if it does
                    have = orjson.loads(sent[:self._member_end] + "}") if self._member_end else {}
                    have.pop(self._open_key, None)
                target = self._checked(self._fallback())
                changed = [k for k in target if k not in have or have[k] != target[k]]
            members = self._members
            pieces = [closing]
            for key in changed:
                pieces.append(("," if members else "") + orjson.dumps(key).decode() + ":"
                              + orjson.dumps(target[key]).decode())
                members += 1
            pieces.append("}")
            text = "".join(pieces)
            self.value = orjson.loads(sent + text)
        self._validate()
        return text

    def _closing(self) -> str:
        """Text that closes whatever value is open, with placeholders that get replaced."""
        if self._holding or not self._stack:
            return ""
        state = self._state
        out: list[str] = []
        if state in (_STR, _KEY_STR):
            out.append('"')
            if state == _KEY_STR:
                out.append(":null")
        elif state == _NUM:
            if self._num not in _NUM_TERMINAL:
                out.append("0")
        elif state == _LIT:
            out.append(self._literal)
        elif state == _COLON:
            out.append(":null")
        elif state == _VALUE and not self._pending_comma:
            out.append("null")
        for opener in reversed(self._stack[1:]):
            out.append("}" if opener == "{" else "]")
        return "".join(out)

    def _fallback(self) -> dict[str, Any]:
        """The whole raw text, repaired into an object as well as it can be."""
        raw = "".join(self._raw).strip()
        if not raw:
            return {}
        try:
            value: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:  # the round trip turns what JSON cannot hold (NaN) into null
                value = orjson.loads(orjson.dumps(repair_json(raw, return_objects=True)))
            except Exception:  # noqa: BLE001 - a repair library must not end the stream
                value = None
        if isinstance(value, str):
            try:
                value = orjson.loads(value)
                self._note("the arguments were a JSON string holding the object")
            except orjson.JSONDecodeError:
                pass
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, dict)), value)
        if not isinstance(value, dict):
            self.invalid = True
            self._note("the arguments were not an object")
            return {}
        return value

    def _checked(self, value: dict[str, Any]) -> dict[str, Any]:
        """Top-level values converted to the types the tool's schema asks for."""
        properties = self.schema.get("properties") if isinstance(self.schema, dict) else None
        if not isinstance(properties, dict):
            return value
        out = value
        for key, item in value.items():
            spec = properties.get(key)
            if not isinstance(item, str) or not isinstance(spec, dict):
                continue
            converted = _coerce(item, spec)
            if converted is not _UNCHANGED:
                if out is value:
                    out = dict(value)
                out[key] = converted
                self._note(f"`{key}` was converted to the type the schema asks for")
        return out

    def _validate(self) -> None:
        if not self.known:
            self.invalid = True
            self.problems.append("the model called a tool that was not offered")
        elif isinstance(self.schema, dict) and self.schema:
            error = schema_error(self.schema, self.value)
            if error:
                self.invalid = True
                self.problems.append(f"input does not match the schema: {error}")
        if self.repaired or self.invalid:
            log.info("tool arguments repaired" if not self.invalid else "tool arguments invalid",
                     tool=self.name, problems=self.problems)


_UNCHANGED = object()


def _coerce(item: str, spec: dict[str, Any]) -> Any:
    kind = spec.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()
    if not kinds or "string" in kinds:
        return _UNCHANGED
    text = item.strip()
    if kinds & {"object", "array"} and text[:1] in "[{":
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return _UNCHANGED
        if ("object" in kinds and isinstance(parsed, dict)) or ("array" in kinds and isinstance(parsed, list)):
            return parsed
        return _UNCHANGED
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    if "integer" in kinds and re.fullmatch(r"-?\d+", text):
        return int(text)
    if "number" in kinds and re.fullmatch(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", text):
        return float(text) if any(ch in text for ch in ".eE") else int(text)
    return _UNCHANGED


@lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> Any:
    from jsonschema import validators  # imported on first use: it is not needed at start

    schema = orjson.loads(schema_json)
    cls = validators.validator_for(schema)
    return cls(schema)


def schema_error(schema: dict[str, Any], value: dict[str, Any]) -> str | None:
    """The first way `value` breaks `schema`, or None (also when the schema is unusable)."""
    try:
        validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
        error = next(iter(validator.iter_errors(value)), None)
    except Exception:  # noqa: BLE001 - a broken schema is the client's, not a reason to fail
        return None
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message
