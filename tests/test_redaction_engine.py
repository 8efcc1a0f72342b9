"""The multi-pattern engine redacts exactly what the pure-Python path redacts, faster.

The reference is the fallback path (engine "regex": the trigger pre-check that tailerd shipped
before Hyperscan) and, above it, running every detector on the whole string
(``scrub(precheck=False)``). Inputs are built from the secrets corpus, real agent transcripts
(../shared/fixtures/agents beside the repo) and random noise.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailerd.domain import LLMCall, Message, SubAgentCall, ToolCall, Turn
from tailerd.redaction import Redactor, redact_text
from tailerd.redaction import engine as engine_module
from tailerd.redaction.turns import turn_strings, walk_turn
from tests.test_redaction import ENTRIES, FRAGMENTS, NEGATIVES, render, rich_turn

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "agents"


def _string_leaves(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _string_leaves(value)]
    if isinstance(node, list):
        return [s for value in node for s in _string_leaves(value)]
    return []


def _transcript_strings(limit: int = 4000) -> list[str]:
    strings: list[str] = []
    for path in sorted(FIXTURES.rglob("*.jsonl")):
        for line in path.read_text("utf-8", errors="replace").splitlines():
            try:
                strings.extend(s for s in _string_leaves(json.loads(line)) if s.strip())
            except ValueError:
                continue
    return strings[:: max(1, len(strings) // limit)]


TRANSCRIPT = _transcript_strings()
RENDERED = [render(entry) for entry in ENTRIES]
OLD = Redactor(engine="regex")
NEW = Redactor(engine="hyperscan")


def _slices(texts: list[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(texts), st.integers(0, 400), st.integers(1, 400)).map(
        lambda t: t[0][t[1] : t[1] + t[2]]
    )


piece = st.one_of(
    st.sampled_from(FRAGMENTS),
    _slices(RENDERED),
    _slices(TRANSCRIPT) if TRANSCRIPT else st.sampled_from(NEGATIVES),
    st.text(max_size=8),  # noise, including non-ASCII and lone surrogates
    st.sampled_from(["é", "✓", "\u2028", "\ud800", "😀", "\x0b", "\\n"]),
)
mixed_text = st.lists(piece, max_size=12).map("".join)
DIFFERENTIAL = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_the_fixture_transcripts_are_there() -> None:
    assert len(TRANSCRIPT) > 1000, FIXTURES  # the differential test really reads agent text


@DIFFERENTIAL
@given(mixed_text)
def test_hyperscan_redacts_exactly_what_the_python_path_redacts(text: str) -> None:
    expected = OLD.redact_text(text)
    assert NEW.redact_text(text) == expected
    assert NEW.scrub(text) == NEW.scrub(text, precheck=False)


@DIFFERENTIAL
@given(st.lists(mixed_text, max_size=6))
def test_a_batch_is_redacted_string_by_string(texts: list[str]) -> None:
    assert NEW.redact_many(texts) == [OLD.redact_text(t) for t in texts]


@DIFFERENTIAL
@given(mixed_text, st.integers(min_value=1, max_value=60))
def test_capped_strings_match_too(text: str, cap: int) -> None:
    old = Redactor(engine="regex", max_attribute_chars=cap)
    new = Redactor(engine="hyperscan", max_attribute_chars=cap)
    assert new.redact_text(text) == old.redact_text(text)
    assert new.redact_many([text, text]) == [old.redact_text(text)] * 2


def test_every_corpus_entry_and_negative_gives_the_same_text_and_counts() -> None:
    old, new = Redactor(engine="regex"), Redactor(engine="hyperscan")
    texts = RENDERED + NEGATIVES + [json.dumps(t) for t in RENDERED]
    assert new.redact_many(texts) == [old.redact_text(t) for t in texts]
    assert new.counts() == old.counts()
    secrets = sum(len(e["secrets"]) for e in ENTRIES)
    assert sum(new.counts().values()) >= 2 * secrets  # every secret, in both encodings


def test_secrets_after_multibyte_characters_are_located_by_character() -> None:
    key = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
    text = f"✓ héllo 😀 {key} \ud800 password: Xk29-fLq-Zz9 ✓"
    expected = "✓ héllo 😀 [REDACTED:github_token] \ud800 password: [REDACTED:secret_assignment] ✓"
    assert NEW.redact_text(text) == expected
    assert NEW.redact_many(["ü" * 3, text]) == ["ü" * 3, expected]


def test_a_secret_split_across_two_strings_of_a_batch_is_not_joined() -> None:
    head, tail = "sk-ant-api03-", "Qw3rTy7uIo9pAs1dFg5hJk2lZx4cVb6nM8"
    redactor = Redactor(engine="hyperscan")
    assert redactor.redact_many([head, tail, "x"]) == [head, tail, "x"]
    assert redactor.counts() == {}


def test_custom_patterns_run_on_every_string_with_hyperscan_too() -> None:
    redactor = Redactor(custom_patterns={"employee_id": r"EMP-\d{6}"}, engine="hyperscan")
    assert redactor.redact_many(["EMP-123456", "x", "id EMP-000001 sk-ant-"]) == [
        "[REDACTED:employee_id]",
        "x",
        "id [REDACTED:employee_id] sk-ant-",
    ]


def test_default_engine_is_hyperscan_here_and_module_function_uses_it() -> None:
    assert Redactor().engine == "hyperscan"
    assert redact_text("postgres://app:Xk29-fLq@db") == "postgres://app:[REDACTED:url_password]@db"


def test_without_hyperscan_the_python_path_runs_after_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "hyperscan", None)  # makes `import hyperscan` fail
    monkeypatch.setattr(engine_module, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="tailerd.redaction.engine"):
        first = Redactor(custom_patterns={"emp": r"EMP-\d{6}"})
        second = Redactor(custom_patterns={"badge": r"BADGE-\d{9}"})
    assert (first.engine, second.engine) == ("regex", "regex")
    warnings = [r for r in caplog.records if "hyperscan unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert first.redact_many(RENDERED) == [OLD.redact_text(t) for t in RENDERED]
    with pytest.raises(ImportError):
        Redactor(custom_patterns={"c": "C-1"}, engine="hyperscan")


def test_a_hyperscan_that_refuses_the_gates_falls_back_too(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import hyperscan

    def refuse(self: object, *args: object, **kwargs: object) -> None:
        raise hyperscan.error("unsupported on this CPU")

    monkeypatch.setattr(engine_module.HyperscanGates, "__init__", refuse)
    monkeypatch.setattr(engine_module, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="tailerd.redaction.engine"):
        redactor = Redactor(custom_patterns={"emp": r"EMP-\d{6}"})
    assert redactor.engine == "regex"
    assert "unsupported on this CPU" in caplog.text
    with pytest.raises(hyperscan.error):
        Redactor(custom_patterns={"emp": r"EMP-\d{6}"}, engine="hyperscan")


def test_unknown_engine_is_rejected() -> None:
    with pytest.raises(ValueError, match="engine"):
        Redactor(engine="pcre")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The turn walk rebuilds only what changed


def test_a_clean_turn_comes_back_as_the_same_object() -> None:
    key = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
    clean = dataclasses.replace(
        rich_turn(),
        messages=(Message("user", "deploy"),),
        spans=(ToolCall(name="Bash", arguments="{}", result="ok"),),
        attributes={"cwd": "/srv", "env": ["A=1", ("B", 2)], "n": {"k": "v"}},
    )
    for engine in ("hyperscan", "regex"):
        for content in ("redacted", "full"):
            redactor = Redactor(engine=engine, content=content)
            assert redactor.apply(clean) is clean
    assert key not in repr(clean)


def test_only_the_path_to_a_changed_string_is_rebuilt() -> None:
    key = "hf_" + "qWeRtYuIoPaSdFgHjKlZxCvBnMqWeRtYuI"
    llm = LLMCall(model="m", input_messages=(Message("user", "hi"),))
    tool = ToolCall(name="Read", arguments='{"path": "a"}', result="text")
    inner = LLMCall(model="h", input_messages=(Message("user", f"use {key}"),))
    sub = SubAgentCall(name="Explore", spans=(tool, inner))
    attributes = {"cwd": "/srv", "payload": {"x": ["1"]}}
    turn = Turn(
        key="k",
        session_id="s",
        start=0,
        end=1,
        messages=(Message("user", "go"),),
        spans=(llm, sub),
        attributes=attributes,
    )
    for engine in ("hyperscan", "regex"):
        out = Redactor(engine=engine).apply(turn)
        new_sub = out.spans[1]
        assert isinstance(new_sub, SubAgentCall)
        new_inner = new_sub.spans[1]
        assert isinstance(new_inner, LLMCall)
        assert new_inner.input_messages[0].content == "use [REDACTED:huggingface_token]"
        assert out.spans[0] is llm and new_sub.spans[0] is tool  # untouched siblings shared
        assert out.messages is turn.messages and out.attributes is attributes
        assert new_sub is not sub and new_inner is not inner
        assert sub.spans[1] is inner and key in inner.input_messages[0].content  # input intact


def test_apply_gives_the_same_turn_on_both_engines_for_every_corpus_slot() -> None:
    from tests.test_redaction import turn_with

    for entry in ENTRIES:
        turn = turn_with(entry["place"], render(entry))
        for content in ("redacted", "none"):
            old = Redactor(engine="regex", content=content)
            new = Redactor(engine="hyperscan", content=content)
            assert new.apply(turn) == old.apply(turn), entry["id"]
            assert new.counts() == old.counts()


def test_the_string_list_follows_the_walk_order() -> None:
    turn = dataclasses.replace(
        rich_turn(), session_name="name", attributes={"a": ["x", ("y", 1)], "b": {"c": "z"}}
    )
    for content in (True, False):
        visited: list[str] = []

        def visit(text: str, out: list[str] = visited) -> str:
            out.append(text)
            return text

        walk_turn(turn, visit if content else (lambda t: t), visit)
        assert turn_strings(turn, content=content) == visited
    # hand count: name + prompt + answer + (llm: input, output, reasoning) + (tool: args, result)
    # + sub-agent (input, output, its llm's 3, its tool's 2) + 3 attribute strings
    assert len(turn_strings(turn)) == 1 + 2 + 3 + 2 + (2 + 3 + 2) + 3
