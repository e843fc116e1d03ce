"""A JSON object streamed so that every prefix the client holds is valid JSON.

`JsonObjectStream` reads an object's text in fragments, however they are split, and
returns the text that can go to the client now: what arrived, minus whitespace outside
strings, with small faults fixed on the spot (a raw control character in a string is
escaped, `\\'` becomes `'`, a trailing comma is dropped, a lone surrogate becomes
U+FFFD). It holds back only what could still turn out wrong: a top-level member until its
`"key":` is complete, an escape until it is complete, the final `}` until `closing()`.
At the first fault it cannot fix it stops (`diverged`) and sends nothing more.

It is a small state machine over characters with a regular-expression fast path for
string contents, so a large argument (a file's content) costs a few microseconds per
fragment.
"""

from __future__ import annotations

import re

import orjson

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
_NUM_CLASS = {
    "0": "0",
    ".": ".",
    "e": "e",
    "E": "e",
    "+": "+",
    "-": "-",
    **{d: "d" for d in "123456789"},
}


class JsonObjectStream:
    """The scanner; `sent` is everything it let through, `closing()` ends it validly."""

    def __init__(self) -> None:
        self.fixes: list[str] = []  # what was fixed on the way (or why it stopped)
        self.diverged = False
        self.members = 0  # top-level members sent (complete or open)
        self.member_end = 0  # sent length after the last complete top-level member
        self._sent: list[str] = []
        self._sent_len = 0
        self._state = _START
        self._stack: list[str] = []
        self._holding = False  # building a top-level member's `,"key":` prefix
        self._held: list[str] = []
        self._pending_comma = False  # a comma inside a nested container, sent with what follows
        self._escape = ""  # an escape sequence in progress
        self._high = ""  # a high surrogate escape waiting for its low half
        self._num = _N_INT
        self._literal = ""
        self._open_key: str | None = None

    @property
    def complete(self) -> bool:
        """The top-level object has closed (only the held-back `}` is left to send)."""
        return self._state == _DONE

    @property
    def settled(self) -> bool:
        """Nothing more will be sent before `closing()`: complete, or no longer valid."""
        return self._state == _DONE or self.diverged

    @property
    def sent(self) -> str:
        return "".join(self._sent)

    def feed(self, fragment: str) -> str:
        """The text to send now for this fragment (often all of it, minus whitespace)."""
        if self.diverged:
            return ""
        if self._state == _DONE:
            if fragment.strip():
                self._note("text after the end of the object was ignored")
                self.diverged = True
            return ""
        out: list[str] = []
        self._scan(fragment, out)
        text = "".join(out)
        if text:
            self._sent.append(text)
            self._sent_len += len(text)
        return text

    def _note(self, fix: str) -> None:
        if fix not in self.fixes:
            self.fixes.append(fix)

    def _put(self, out: list[str], text: str) -> None:
        if self._holding:
            self._held.append(text)
        else:
            out.append(text)

    def _diverge(self) -> None:
        self.diverged = True
        self._note("the arguments were not valid JSON")

    def _scan(self, text: str, out: list[str]) -> None:  # one state machine, kept in one place
        i, n = 0, len(text)
        while i < n:
            state = self._state
            if state in (_STR, _KEY_STR):
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
                closes = state == _ARR_FIRST or self._pending_comma
                if c == "]" and closes and self._stack[-1] == "[":
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
                    self.members += 1
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
                self.diverged = True
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
            self.member_end = self._sent_len + sum(map(len, out))
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

    def closing(self) -> str:
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
