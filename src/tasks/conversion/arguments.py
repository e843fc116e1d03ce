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

import json
from typing import Any

import orjson
import structlog
from json_repair import repair_json

from src.tasks.conversion.input_schema import coerce_to_schema, schema_error
from src.tasks.conversion.json_stream import JsonObjectStream

log = structlog.get_logger("oas.tools")


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
        self.invalid = False
        self._notes: list[str] = []
        self._problems: list[str] = []
        self._raw: list[str] = []
        self._json = JsonObjectStream()

    @property
    def complete(self) -> bool:
        return self._json.complete

    @property
    def settled(self) -> bool:
        """Nothing more will be sent before `finish()`."""
        return self._json.settled

    @property
    def problems(self) -> list[str]:
        """What was repaired, then what is still wrong."""
        return [*self._json.fixes, *self._notes, *self._problems]

    @property
    def repaired(self) -> bool:
        return bool(self._json.fixes or self._notes)

    def _note(self, problem: str) -> None:
        if problem not in self._notes:
            self._notes.append(problem)

    def feed(self, fragment: str) -> str:
        """The text to send now for this upstream fragment (often all of it)."""
        if not fragment:
            return ""
        self._raw.append(fragment)
        return self._json.feed(fragment)

    def finish(self) -> str:
        """The rest of the text: afterwards the client holds one complete JSON object."""
        scanner = self._json
        sent = scanner.sent
        if not sent:
            target = self._checked(self._fallback())
            self.value = target
            self._validate()
            return _dumps(target)
        if scanner.complete:
            closing = ""
            have = json.loads(sent + "}")
            target = self._checked(have)
        else:
            if not scanner.diverged:
                self._note("the arguments were cut off")
            closing = scanner.closing()
            have = json.loads(sent + closing + "}")  # what the client would hold now
            target = self._checked(self._fallback())
        # Members the client lacks or holds differently, again in full: the last wins.
        members = scanner.members
        pieces = [closing]
        for key, value in target.items():
            if key in have and have[key] == value:
                continue
            pieces.append(("," if members else "") + _dumps(key) + ":" + _dumps(value))
            members += 1
        pieces.append("}")
        text = "".join(pieces)
        self.value = json.loads(sent + text)  # as the client parses it (big integers exact)
        self._validate()
        return text

    def _fallback(self) -> dict[str, Any]:
        """The whole raw text, repaired into an object as well as it can be."""
        raw = "".join(self._raw).strip()
        if not raw:
            return {}
        try:
            value: Any = json.loads(raw)
        except ValueError:
            try:
                value = repair_json(raw, return_objects=True)
            except Exception:
                value = None
        try:
            value = json.loads(_dumps(value))  # what JSON cannot hold (NaN) becomes null
        except ValueError:
            value = None
        if isinstance(value, str):
            try:
                value = json.loads(value)
                self._note("the arguments were a JSON string holding the object")
            except ValueError:
                pass
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, dict)), value)
        if not isinstance(value, dict):
            self.invalid = True
            self._note("the arguments were not an object")
            return {}
        return value

    def _checked(self, value: dict[str, Any]) -> dict[str, Any]:
        out, converted = coerce_to_schema(value, self.schema)
        for key in converted:
            self._note(f"`{key}` was converted to the type the schema asks for")
        return out

    def _validate(self) -> None:
        if not self.known:
            self.invalid = True
            self._problems.append("the model called a tool that was not offered")
        elif isinstance(self.schema, dict) and self.schema:
            error = schema_error(self.schema, self.value)
            if error:
                self.invalid = True
                self._problems.append(f"input does not match the schema: {error}")
        if self.repaired or self.invalid:
            log.info(
                "tool arguments invalid" if self.invalid else "tool arguments repaired",
                tool=self.name,
                problems=self.problems,
            )


def _dumps(value: Any) -> str:
    """Compact JSON; integers beyond 64 bits (which orjson refuses) kept exact."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
