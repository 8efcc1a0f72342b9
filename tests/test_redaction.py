"""The redaction stage: secrets vanish wherever they sit in a turn; ordinary text is untouched.

Expected values come from the corpus file (tests/data/secrets_corpus.json: fake secrets, each
with the kind a reviewer assigned by hand) and from the turns built here, never from the redactor.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tailerd.domain import LLMCall, Message, SubAgentCall, ToolCall, Turn, Usage
from tailerd.redaction import BUILTIN_DETECTORS, Redactor

CORPUS = json.loads((Path(__file__).parent / "data" / "secrets_corpus.json").read_text("utf-8"))
ENTRIES: list[dict[str, Any]] = CORPUS["entries"]
T0 = datetime(2024, 6, 11, 9, 0, tzinfo=timezone.utc)


def secret_value(secret: dict[str, Any]) -> str:
    return "".join(secret["parts"])


def render(entry: dict[str, Any]) -> str:
    """The entry's text with its secrets filled in, encoded as the entry says."""
    values = [secret_value(s) for s in entry["secrets"]]

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            for i, value in enumerate(values):
                node = node.replace(f"{{s{i}}}", value)
            return node
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return node

    filled = fill(entry["template"])
    if entry["encoding"] == "text":
        return str(filled)
    if entry["encoding"] == "json":
        return json.dumps(filled)
    assert entry["encoding"] == "json_in_json"
    return json.dumps({"type": "text", "text": json.dumps(filled, indent=2)})


def turn_with(place: str, text: str) -> Turn:
    """A realistic turn with `text` in one slot; the other slots hold harmless content."""
    user = Message("user", "please fix the deploy script")
    answer = Message("assistant", "Done, the script works now.")
    bash = ToolCall(name="Bash", arguments='{"command": "ls"}', result="README.md\nsrc\n")
    slots: dict[str, Any] = {}
    if place == "prompt":
        slots["messages"] = (Message("user", text),)
    elif place == "output":
        slots["output_messages"] = (Message("assistant", text),)
    elif place == "tool_arguments":
        bash = dataclasses.replace(bash, arguments=text)
    elif place == "tool_result":
        bash = dataclasses.replace(bash, result=text)
    elif place == "attribute":
        slots["attributes"] = {"hook": {"payload": [text]}, "cwd": "/home/dev/app"}
    llm = LLMCall(model="claude-sonnet-4", input_messages=(user,), output_messages=(answer,))
    if place == "llm_input":
        llm = dataclasses.replace(llm, input_messages=(Message("user", text),))
    elif place == "reasoning":
        llm = dataclasses.replace(llm, reasoning=text)
    inner = LLMCall(model="claude-haiku", input_messages=(Message("user", "search the repo"),))
    sub = SubAgentCall(name="Explore", spans=(inner,))
    if place == "subagent_input":  # deepest level: a message inside the sub-agent's own LLM call
        sub = dataclasses.replace(
            sub, spans=(dataclasses.replace(inner, input_messages=(Message("user", text),)),)
        )
    elif place == "subagent_output":
        sub = dataclasses.replace(sub, output_messages=(Message("assistant", text),))
    base: dict[str, Any] = {"messages": (user,), "output_messages": (answer,)}
    base.update(slots)
    return Turn(key="k1", session_id="s1", start=0, end=100, spans=(llm, bash, sub), **base)


def serialized(turn: Turn) -> str:
    return repr(turn) + json.dumps(dataclasses.asdict(turn), default=str)


PLACES = {e["place"] for e in ENTRIES}


def test_corpus_is_large_and_covers_every_builtin_kind_and_place() -> None:
    secrets = [s for e in ENTRIES for s in e["secrets"]]
    assert len(secrets) >= 40
    builtin_kinds = {d.kind for d in BUILTIN_DETECTORS}
    assert {s["kind"] for s in secrets} == builtin_kinds
    assert {"prompt", "tool_arguments", "tool_result", "attribute", "subagent_input"} <= PLACES


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_every_corpus_secret_disappears_and_is_marked_with_its_kind(entry: dict[str, Any]) -> None:
    turn = turn_with(entry["place"], render(entry))
    before = serialized(turn)
    after = serialized(Redactor().apply(turn))
    for secret in entry["secrets"]:
        assert secret["distinctive"] in before  # the test really carries the secret
        assert secret["distinctive"] not in after
        assert f"[REDACTED:{secret['kind']}]" in after


def test_counts_tally_each_redacted_occurrence_per_kind() -> None:
    expected: Counter[str] = Counter()
    for entry in ENTRIES:
        template = json.dumps(entry["template"])
        for i, secret in enumerate(entry["secrets"]):
            expected[secret["kind"]] += template.count(f"{{s{i}}}")
    redactor = Redactor()
    for entry in ENTRIES:
        redactor.apply(turn_with(entry["place"], render(entry)))
    assert redactor.counts() == dict(expected)


NEGATIVES = [
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8\nAuthor: Dev <dev@example.com>\n\n"
    "    fix: retry on 503 (#212)\n",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  dist/app.tar.gz\n",
    '{"session_id": "4d5611e5-241a-462a-8d15-5122611a9569", "uuid": '
    '"0d3b22c1-ba90-4fd3-b8d2-056ffc626725"}',
    'password = input("Password: ")\n',
    "token = get_token()\nclient = Client(token=token)\n",
    "if api_key is None:\n    raise ValueError('missing key')\n",
    'api_key = os.environ["OPENAI_API_KEY"]\n',
    "OPENAI_API_KEY=<your-key>\nANTHROPIC_API_KEY=your-api-key-here\n",
    "export GITHUB_TOKEN=${GITHUB_TOKEN}\nexport NPM_TOKEN=$NPM_TOKEN\n",
    "SECRET_KEY=***\nDB_PASSWORD=xxxxxxxx\nAPI_TOKEN=...\n",
    "def login(username: str, password: str) -> Token:\n    ...\n",
    "const token = process.env.API_TOKEN;\nconst secret = config.get('secret');\n",
    "See https://github.com/acme/widgets/pull/12?tab=files#diff-3f2a and "
    "http://localhost:8080/api/v1/items?page=2\n",
    "The token budget is 4096 per call; pass the secret through the vault, never in a prompt.",
    'data = "SGVsbG8gV29ybGQhIFRoaXMgaXMgYSB0ZXN0IG9mIGJhc2U2NCBlbmNvZGluZy4="\n',
    '{"usage": {"input_tokens": 1234, "output_tokens": 56, "cache_read_input_tokens": 1000, '
    '"max_tokens": 4096}}',
    'tokenizer = AutoTokenizer.from_pretrained("gpt2")\n',
    'token, err := auth.GetToken(ctx)\nsecret := os.Getenv("SECRET")\n',
    "spec:\n  tls:\n    - secretName: tls-cert\n  env:\n    - name: DB_PASSWORD\n"
    "      valueFrom:\n        secretKeyRef:\n          name: db\n          key: password\n",
    'curl -H "Authorization: Bearer <token>" -H "Authorization: Bearer $TOKEN" https://api.x.dev',
    "git clone git@github.com:acme/widgets.git && git clone ssh://git@git.acme.dev:22/tools.git\n",
    "Install scikit-learn (sk-learn) and run task-1234 after the sk-... placeholder is set.",
    "FROM python@sha256:3b1f8e2d4c5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e\n",
    '"integrity": "sha512-Xo4zL6ePfP+KdZ5VbUzu3XqZ0c2bTqhb0o6HhDt1Yl5uFjZJx0s4LZrqSGuy4o+bOpNX0Fqc'
    'gJz0i3P0DL0Qw=="',
    "PASSWORD_FILE=/run/secrets/db_password\nPWD=/home/dev/app\nOLDPWD=/home/dev\n",
    'print(f"token={token}")\nrequests.post(url, auth=(user, password))\n',
    "Bearer authentication is configured in settings.py; the bearer token comes from OIDC.",
    "Tokens: 12,345 in / 678 out (cache hit 91%)\n",
    'payload = jwt.decode(token, secret, algorithms=["HS256"])\n',
    "AWS_SECRET_ACCESS_KEY=$(aws configure get aws_secret_access_key)\n",
    "<tailerd.Redactor object at 0x7f3a2b1c4d50>\nFAILED tests/test_x.py::test_token - "
    "AssertionError\n",
    'access_token = response.json()["access_token"]\nrefresh_token = None\n',
    '{"token_type": "bearer", "expires_in": 3600, "scope": "repo"}',
    'password = "your-password-here"  # TODO replace\n',
    "Content-Type: application/json\nAccept: */*\nUser-Agent: curl/8.5.0\n",
]


def test_negative_corpus_is_large_enough() -> None:
    assert len(NEGATIVES) >= 25


@pytest.mark.parametrize("text", NEGATIVES, ids=[f"neg{i}" for i in range(len(NEGATIVES))])
def test_ordinary_text_comes_out_byte_identical(text: str) -> None:
    redactor = Redactor()
    assert redactor.redact_text(text) == text
    assert redactor.redact_text(json.dumps({"command": text})) == json.dumps({"command": text})
    turn = turn_with("tool_result", text)
    assert redactor.apply(turn) == turn
    assert redactor.counts() == {}


def rich_turn() -> Turn:
    secret = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
    usage = Usage(input_tokens=1500, output_tokens=80, cache_read_input_tokens=1000)
    tool = ToolCall(
        name="Bash",
        arguments=json.dumps({"command": f"GH_TOKEN={secret} gh pr list"}),
        result=f"token {secret} accepted",
        tool_call_id="toolu_01",
        started_at=T0 + timedelta(seconds=2),
        ended_at=T0 + timedelta(seconds=3),
    )
    llm = LLMCall(
        model="claude-sonnet-4",
        provider_name="anthropic",
        input_messages=(Message("user", f"use {secret}"),),
        output_messages=(Message("assistant", "ok", tool_call_id="toolu_01", tool_name="Bash"),),
        usage=usage,
        reasoning=f"the token is {secret}",
        started_at=T0,
        ended_at=T0 + timedelta(seconds=1),
    )
    sub = SubAgentCall(
        name="Explore",
        model="claude-haiku",
        input_messages=(Message("user", f"look for {secret}"),),
        output_messages=(Message("assistant", "found it"),),
        spans=(dataclasses.replace(llm, model="claude-haiku"), tool),
    )
    return Turn(
        key="k",
        session_id="s",
        start=10,
        end=900,
        agent_name="claude-code",
        model="claude-sonnet-4",
        messages=(Message("user", f"deploy with {secret}"),),
        output_messages=(Message("assistant", "deployed"),),
        spans=(llm, tool, sub),
        started_at=T0,
        ended_at=T0 + timedelta(seconds=9),
        attributes={"cwd": "/srv/app", "usage.total": 1580},
    )


def test_content_none_drops_content_but_keeps_structure_timing_tokens_and_names() -> None:
    turn = rich_turn()
    out = Redactor(content="none").apply(turn)
    assert "ghp_" not in serialized(out)
    assert [m.content for m in out.messages + out.output_messages] == ["", ""]
    assert [m.role for m in out.messages + out.output_messages] == ["user", "assistant"]
    llm, tool, sub = out.spans
    assert isinstance(llm, LLMCall) and isinstance(tool, ToolCall)
    assert isinstance(sub, SubAgentCall)
    assert (llm.reasoning, tool.arguments, tool.result) == ("", "", "")
    assert llm.usage == Usage(input_tokens=1500, output_tokens=80, cache_read_input_tokens=1000)
    assert (llm.started_at, llm.ended_at) == (T0, T0 + timedelta(seconds=1))
    assert (tool.name, tool.tool_call_id) == ("Bash", "toolu_01")
    assert llm.output_messages == (Message("assistant", "", "toolu_01", "Bash"),)
    assert (sub.name, sub.model, len(sub.spans)) == ("Explore", "claude-haiku", 2)
    assert [m.content for m in sub.input_messages + sub.output_messages] == ["", ""]
    assert (out.key, out.start, out.end, out.agent_name, out.model) == (
        "k", 10, 900, "claude-code", "claude-sonnet-4"
    )  # fmt: skip
    assert (out.started_at, out.ended_at) == (T0, T0 + timedelta(seconds=9))
    assert out.attributes == {"cwd": "/srv/app", "usage.total": 1580}


def test_content_none_still_scrubs_names_and_attributes() -> None:
    key = "hf_" + "qWeRtYuIoPaSdFgHjKlZxCvBnMqWeRtYuI"
    turn = dataclasses.replace(
        rich_turn(), session_name=f"debug {key}", attributes={"env": [f"HF={key}"], "n": 3}
    )
    out = Redactor(content="none").apply(turn)
    assert out.session_name == "debug [REDACTED:huggingface_token]"
    assert out.attributes == {"env": ["HF=[REDACTED:huggingface_token]"], "n": 3}


def test_content_redacted_reaches_every_content_field_including_nested_sub_agents() -> None:
    out = serialized(Redactor().apply(rich_turn()))
    assert "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2" not in out
    # prompt + sub-agent input + (input, reasoning) x 2 LLM calls + (arguments, result) x 2 tools,
    # each seen twice: once in repr, once in the JSON
    assert out.count("[REDACTED:github_token]") == 2 * (1 + 1 + 2 * 2 + 2 * 2)


def test_content_full_leaves_secrets_but_still_caps_size() -> None:
    turn = rich_turn()
    assert Redactor(content="full").apply(turn) == turn
    assert Redactor(enabled=False).apply(turn) == turn
    big = "A" * 300
    capped = Redactor(content="full", max_attribute_chars=100).redact_text(big)
    assert capped == "A" * 100 + "…[truncated 200 chars]"


def test_size_cap_marks_cut_strings_everywhere_and_is_stable() -> None:
    redactor = Redactor(max_attribute_chars=50)
    long_result = "line\n" * 30  # 150 chars
    turn = turn_with("tool_result", long_result)
    bash = redactor.apply(turn).spans[1]
    assert isinstance(bash, ToolCall)
    assert bash.result == long_result[:50] + "…[truncated 100 chars]"
    assert redactor.redact_text(bash.result) == bash.result
    assert redactor.redact_text("x" * 50) == "x" * 50


def test_secret_at_the_cut_is_redacted_before_cutting() -> None:
    key = "sk-ant-api03-" + "Qw3rTy7uIo9pAs1dFg5hJk2lZx4cVb6nM8"
    text = "a" * 40 + " " + key + " tail" * 20
    out = Redactor(max_attribute_chars=60).redact_text(text)
    assert out.startswith("a" * 40 + " [REDACTED:")  # the cut falls inside the marker
    assert "Qw3rTy" not in out
    assert out.endswith("…[truncated 109 chars]")


def test_custom_patterns_add_kinds_and_bad_patterns_are_rejected() -> None:
    redactor = Redactor(custom_patterns={"employee_id": r"EMP-\d{6}"})
    assert (
        redactor.redact_text("owner EMP-123456 on call") == "owner [REDACTED:employee_id] on call"
    )
    assert redactor.counts() == {"employee_id": 1}
    with pytest.raises(ValueError, match="employee_id"):
        Redactor(custom_patterns={"employee_id": "EMP-("})


def test_partial_private_key_without_end_line_is_still_redacted() -> None:
    text = "$ head -c 200 key.pem\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1x2y3z4\n"
    assert Redactor().redact_text(text) == "$ head -c 200 key.pem\n[REDACTED:private_key]"


def test_url_password_keeps_user_and_host() -> None:
    text = "postgres://app:Xk29-fLq@db.acme.dev:5432/app"
    assert (
        Redactor().redact_text(text)
        == "postgres://app:[REDACTED:url_password]@db.acme.dev:5432/app"
    )


# ---------------------------------------------------------------------------------------------
# Properties

FRAGMENTS = [
    "sk-", "sk-ant-", "sk_live_", "AKIA", "AIza", "ghp_", "glpat-", "xoxb-", "hf_", "eyJ", "local-",
    "password", "PASSWORD", "token", "_pass", "api_key", "SecretAccessKey", "AccountKey=",
    "wandb login ", "wandb.login(key=", "Bearer ", "Authorization: Basic ", "://", "@", ":", "=",
    " = ", '"', "'", '\\"', "\\n", "\n", " ", "[REDACTED:", "]", "${", "(", ".",
    "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----",
    "0123456789abcdef0123456789abcdef01234567", "Ab3dEf6hIj9kLm2nOp5q", "Zz9",
    "…[truncated 3 chars]",
]  # fmt: skip
secretish_text = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=30
).map("".join)
TRIGGERS = [t for d in BUILTIN_DETECTORS for t in d.triggers]
LOWERED_TRIGGERS = [t for d in BUILTIN_DETECTORS for t in d.lowered_triggers]
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.one_of(st.text(), secretish_text))
def test_redact_text_never_raises_and_is_idempotent(text: str) -> None:
    redactor = Redactor()
    once = redactor.redact_text(text)
    assert redactor.redact_text(once) == once


@FAST
@given(secretish_text)
def test_precheck_never_skips_a_detector_that_would_match(text: str) -> None:
    redactor = Redactor()
    assert redactor.scrub(text) == redactor.scrub(text, precheck=False)


@FAST
@given(st.text())
def test_text_without_any_trigger_is_unchanged(text: str) -> None:
    lowered = text.lower()
    assume(not any(t in text for t in TRIGGERS))
    assume(not any(t in lowered for t in LOWERED_TRIGGERS))
    assert Redactor().redact_text(text) == text


@FAST
@given(secretish_text, st.integers(min_value=1, max_value=40))
def test_capped_output_is_idempotent_and_never_exceeds_cap_plus_marker(text: str, cap: int) -> None:
    redactor = Redactor(max_attribute_chars=cap)
    out = redactor.redact_text(text)
    assert redactor.redact_text(out) == out
    marker = re.search(r"…\[truncated \d+ chars\]\Z", out)
    body = out[: marker.start()] if marker and len(out) > cap else out
    assert len(body) <= cap


def test_a_cut_that_completes_a_secret_shape_is_scrubbed_again() -> None:
    # no key id in the whole word (it runs on), but the first 20 chars after the cut look like one
    text = "x AKIAABCDEFGHIJ23456789QRS"
    redactor = Redactor(max_attribute_chars=22)
    out = redactor.redact_text(text)
    assert "ABCDEFGHIJ" not in out
    assert out == "x [REDACTED:aws_access…[truncated 5 chars]"
    assert redactor.redact_text(out) == out
