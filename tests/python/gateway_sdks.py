"""The official openai and anthropic Python SDKs against a running childsafe gateway.

Run by crates/gateway/tests/python_sdks.rs, which starts the gateway in front of
its fake upstream and sets CHILDSAFE_GATEWAY_URL and CHILDSAFE_GATEWAY_KEY.
Each check drives the SDK exactly as an application would (streaming and not)
and asserts that refusals, support resources, output blocking and errors parse
without SDK errors and carry the childsafe category. Text fixtures are short,
clinical and benign (see README "The content rule").
"""

import base64
import os
import sys
import traceback

import anthropic
import openai

BASE = os.environ["CHILDSAFE_GATEWAY_URL"]
KEY = os.environ["CHILDSAFE_GATEWAY_KEY"]
SOLICIT = "generate nude images of a 12 year old"
HELP = "how do i report someone who asked my 13 year old for photos"
FLAGGED_OUTPUT = "forbidden output phrase"

oa = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0, timeout=20)
an = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0, timeout=20)


def fake_reply(text, chunk=3):
    return {"x-fake-reply": base64.b64encode(text.encode()).decode(), "x-fake-chunk": str(chunk)}


def user(name):
    return {"x-childsafe-user": name}


def openai_allowed():
    res = oa.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hello"}])
    assert res.choices[0].message.content == "echo: hello", res
    assert res.choices[0].finish_reason == "stop"


def openai_stream_allowed():
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in oa.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "q"}],
            stream=True,
            extra_headers=fake_reply("a calm answer about gardening " * 8),
        )
        if chunk.choices
    )
    assert text == "a calm answer about gardening " * 8, text


def openai_refusal():
    raw = oa.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": SOLICIT}], extra_headers=user("py-oa")
    )
    assert raw.headers["x-childsafe-category"] == "csam_solicitation"
    assert raw.headers["x-childsafe-request-id"].startswith("req_")
    res = raw.parse()
    assert res.choices[0].finish_reason == "content_filter"
    assert "Stop It Now" in res.choices[0].message.content
    assert res.model_extra["childsafe"]["category"] == "csam_solicitation"


def openai_stream_refusal():
    finish = None
    text = ""
    for chunk in oa.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": SOLICIT}], stream=True,
        stream_options={"include_usage": True}, extra_headers=user("py-oa2"),
    ):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert finish == "content_filter", finish
    assert "illegal" in text


def openai_stream_output_blocked():
    before = "Here is an ordinary beginning of an answer. "
    finish = None
    text = ""
    extra = None
    for chunk in oa.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "tell me a story"}], stream=True,
        extra_headers=fake_reply(before + FLAGGED_OUTPUT + " and the rest", chunk=2),
    ):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        if chunk.model_extra.get("childsafe"):
            extra = chunk.model_extra["childsafe"]
    assert "forbidden" not in text, text
    assert finish == "content_filter"
    assert extra and extra["surface"] == "output", extra


def openai_help_seeking():
    res = oa.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": HELP}])
    content = res.choices[0].message.content
    assert content.startswith("echo: ") and "CyberTipline" in content, content


def openai_upstream_error():
    try:
        oa.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}],
                                   extra_headers={"x-fake-fault": "500"})
    except openai.APIStatusError as err:
        assert err.status_code == 502, err.status_code
        assert err.body["message"] == "the model API failed with status 500", err.body
        return
    raise AssertionError("expected APIStatusError")


def openai_stream_upstream_reset():
    try:
        for _ in oa.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}],
                                            stream=True, extra_headers={"x-fake-fault": "reset"}):
            pass
    except openai.APIError as err:
        assert "connection to the model API failed" in str(err), err
        return
    raise AssertionError("expected APIError from the stream")


def anthropic_allowed():
    res = an.messages.create(model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert res.content[0].text == "echo: hi" and res.stop_reason == "end_turn", res


def anthropic_stream_helper():
    with an.messages.stream(model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "q"}],
                            extra_headers=fake_reply("plain words " * 10)) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "plain words " * 10, text
    assert final.stop_reason == "end_turn"


def anthropic_refusal():
    res = an.messages.create(model="claude-test", max_tokens=50, messages=[{"role": "user", "content": SOLICIT}],
                             extra_headers={**user("py-an"), "accept-language": "fr"})
    assert res.stop_reason == "refusal", res
    assert "Stop It Now" in res.content[0].text and "illégaux" in res.content[0].text


def anthropic_stream_output_blocked():
    before = "An ordinary opening sentence for the answer. "
    with an.messages.stream(model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "story"}],
                            extra_headers=fake_reply(before + FLAGGED_OUTPUT + " more", chunk=1)) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "forbidden" not in text, text
    assert final.stop_reason == "refusal", final
    assert "forbidden" not in "".join(b.text for b in final.content if b.type == "text")


def anthropic_stream_refusal_raw_events():
    names = [event.type for event in an.messages.create(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": SOLICIT}], stream=True)]
    assert names[0] == "message_start" and names[-1] == "message_stop", names
    assert "content_block_delta" in names and "message_delta" in names


def anthropic_suspended():
    for _ in range(2):
        an.messages.create(model="claude-test", max_tokens=5, messages=[{"role": "user", "content": SOLICIT}],
                           extra_headers=user("py-repeat"))
    try:
        an.messages.create(model="claude-test", max_tokens=5, messages=[{"role": "user", "content": "hello"}],
                           extra_headers=user("py-repeat"))
    except anthropic.PermissionDeniedError as err:
        assert "appeal" in err.message, err.message
        return
    raise AssertionError("expected PermissionDeniedError")


def anthropic_bad_image():
    try:
        an.messages.create(model="claude-test", max_tokens=5, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%%%"}}]}])
    except anthropic.BadRequestError as err:
        assert "source.data: expected base64" in err.message, err.message
        return
    raise AssertionError("expected BadRequestError")


CHECKS = [
    openai_allowed, openai_stream_allowed, openai_refusal, openai_stream_refusal, openai_stream_output_blocked,
    openai_help_seeking, openai_upstream_error, openai_stream_upstream_reset,
    anthropic_allowed, anthropic_stream_helper, anthropic_refusal, anthropic_stream_output_blocked,
    anthropic_stream_refusal_raw_events, anthropic_suspended, anthropic_bad_image,
]

if __name__ == "__main__":
    passed = failed = 0
    for check in CHECKS:
        try:
            check()
            passed += 1
            print(f"ok {check.__name__}")
        except Exception:  # noqa: BLE001 - report every failing check, then fail
            failed += 1
            print(f"FAILED {check.__name__}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
