"""Tool-call arguments: streamed while valid, always parseable, repaired when broken."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jiter import from_json

from src.tasks.conversion.arguments import ToolArguments, schema_error

EDIT_SCHEMA = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "edits": {"type": "array", "items": {"type": "object"}},
        "count": {"type": "integer"},
        "dry_run": {"type": "boolean"},
    },
    "required": ["path"],
}


def run(
    pieces: list[str], schema: dict | None = None, known: bool = True
) -> tuple[ToolArguments, list[str]]:
    """Feed pieces as the upstream would; check what the client holds after every delta."""
    args = ToolArguments("edit", schema, known)
    sent: list[str] = []
    for piece in pieces:
        delta = args.feed(piece)
        if delta:
            sent.append(delta)
            # What the Python SDK does after every input_json_delta: must never raise.
            from_json("".join(sent).encode(), partial_mode=True)
    rest = args.finish()
    if rest:
        sent.append(rest)
    return args, sent


def split(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(text):
        j = i + rng.randint(1, 6)
        pieces.append(text[i:j])
        i = j
    return pieces


def test_valid_arguments_stream_as_they_arrive_and_are_not_repaired():
    args, sent = run(['{"path": "a.py",', ' "count": 3}'], EDIT_SCHEMA)
    assert sent[0] == '{"path":"a.py"'  # sent before the object is complete
    assert json.loads("".join(sent)) == {"path": "a.py", "count": 3} == args.value
    assert not args.repaired and not args.invalid


def test_a_half_received_key_is_never_sent():
    args, sent = run(['{"path": "a.py", "cou', 'nt": 3}'])
    assert sent[0] == '{"path":"a.py"'
    assert sent[1] == ',"count":3'


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('{"content": "line1\nline2\ttab"}', {"content": "line1\nline2\ttab"}),  # raw control chars
        ("{'path': 'a.py', 'dry_run': True}", {"path": "a.py", "dry_run": True}),  # Python literals
        (
            '{"path": "a.py", "edits": [1, 2,],}',
            {"path": "a.py", "edits": [1, 2]},
        ),  # trailing commas
        ('{"path": "it\\\'s"}', {"path": "it's"}),  # \' is not a JSON escape
        ('{"path": "a.py"} {"path": "b.py"}', {"path": "a.py"}),  # two objects glued together
        ('{"path": "a.py", "count": 3', {"path": "a.py", "count": 3}),  # cut off (max_tokens)
        (
            '{"path": "a.py", "edits": [{"old": "x", "new": "y',
            {"path": "a.py", "edits": [{"old": "x", "new": "y"}]},
        ),
        ('"{\\"path\\": \\"a.py\\"}"', {"path": "a.py"}),  # the object double-encoded as a string
        ('{"path": "\\ud83d"}', {"path": "\ufffd"}),  # a lone surrogate
    ],
)
def test_broken_arguments_are_repaired_whatever_the_split(raw, expected):
    results = set()
    for seed in range(20):
        args, sent = run(split(raw, seed))
        assert json.loads("".join(sent)) == expected == args.value
        assert args.repaired
        results.add("".join(sent))
    assert len(results) == 1, "the text sent must not depend on how the upstream split it"


def test_empty_arguments_are_an_empty_object_not_a_repair():
    args, sent = run([])
    assert "".join(sent) == "{}" and args.value == {}
    assert not args.repaired and not args.invalid


@pytest.mark.parametrize("raw", ["[1, 2]", "hello", "42"])
def test_arguments_that_are_not_an_object_become_an_empty_input_and_count_as_invalid(raw):
    args, sent = run([raw])
    assert json.loads("".join(sent)) == {} == args.value
    assert args.invalid


def test_after_the_first_fault_nothing_more_is_sent_until_the_repair():
    args, sent = run(['{"path": "a.py", ', "'count': 3, ", "'dry_run': True}"])
    assert sent[0] == '{"path":"a.py"'
    assert len(sent) == 2  # the rest comes in one piece at the end
    assert json.loads("".join(sent)) == {"path": "a.py", "count": 3, "dry_run": True}


def test_a_value_broken_midway_is_replaced_by_its_repaired_value():
    args, sent = run(['{"path": "a.py", "edits": [{"old": "x"}, ', "{'old': 'y'}]}"], EDIT_SCHEMA)
    assert args.value == {"path": "a.py", "edits": [{"old": "x"}, {"old": "y"}]}
    # The key repeats in the raw text; the last occurrence wins in every JSON parser.
    assert "".join(sent).count('"edits"') == 2
    assert from_json("".join(sent).encode()) == args.value


def test_values_the_schema_wants_typed_are_converted():
    raw = '{"path": "a.py", "edits": "[{\\"old\\": \\"x\\"}]", "count": "3", "dry_run": "false"}'
    args, sent = run(split(raw, 1), EDIT_SCHEMA)
    assert args.value == {"path": "a.py", "edits": [{"old": "x"}], "count": 3, "dry_run": False}
    assert json.loads("".join(sent)) == args.value
    assert args.repaired and not args.invalid


def test_input_that_breaks_the_schema_is_kept_and_flagged_invalid():
    args, _ = run(['{"count": 3}'], EDIT_SCHEMA)
    assert args.value == {"count": 3}
    assert args.invalid and not args.repaired
    assert any("path" in p for p in args.problems)


def test_a_tool_that_was_not_offered_is_flagged_invalid():
    args, _ = run(['{"x": 1}'], None, known=False)
    assert args.value == {"x": 1} and args.invalid


def test_schema_error_names_the_place():
    assert schema_error(EDIT_SCHEMA, {"path": "a", "count": "x"}).startswith("count:")
    assert schema_error(EDIT_SCHEMA, {"path": "a"}) is None
    assert (
        schema_error({"type": "object", "properties": {"a": {"$ref": "#/nope"}}}, {"a": 1}) is None
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    value=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    seed=st.integers(0, 10_000),
    indent=st.sampled_from([None, 2]),
)
def test_any_valid_object_arrives_unchanged_under_any_split(value, seed, indent):
    raw = json.dumps(value, indent=indent, ensure_ascii=seed % 2 == 0)
    args, sent = run(split(raw, seed))
    assert json.loads("".join(sent)) == value == args.value
    assert not args.repaired


@settings(max_examples=150, deadline=None)
@given(
    value=st.dictionaries(st.text(max_size=10), json_values, min_size=1, max_size=5),
    cut=st.floats(0, 1),
    seed=st.integers(0, 10_000),
)
def test_any_cut_off_object_still_parses(value, cut, seed):
    raw = json.dumps(value)
    raw = raw[: int(len(raw) * cut)]
    args, sent = run(split(raw, seed))
    assert isinstance(json.loads("".join(sent)), dict)
    assert json.loads("".join(sent)) == args.value


@settings(max_examples=150, deadline=None)
@given(raw=st.text(alphabet="{}[]\",:\\ abtrue0123nul\n'", max_size=40), seed=st.integers(0, 1000))
def test_any_garbage_gives_a_parseable_object(raw, seed):
    args, sent = run(split(raw, seed))
    assert json.loads("".join(sent)) == args.value
    assert isinstance(args.value, dict)
