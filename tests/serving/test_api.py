"""The server's HTTP API as a client sees it: OpenAI shapes, batched answers equal to a plain
``generate`` loop, errors that name the field, the reload call's authentication, metrics."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

from freshlm.serving.app import VERSION_HEADER
from freshlm.serving.server import ServeConfigError, check_config
from freshlm.settings import Settings
from tests.serving.conftest import TOKEN, Served

PROMPTS = [
    "Orrin Labs launched the",
    "The Tessford Lantern Festival",
    "Mayor Ada Brook opened",
    "Researchers published a paper on",
]


def _plain_generate(folder, prompt: str, new_tokens: int) -> str:
    """One prompt alone, greedy, no padding: the baseline the served answers must equal."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(
            **ids, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    new = out[0, ids["input_ids"].shape[1] :].tolist()
    if tokenizer.eos_token_id in new:
        new = new[: new.index(tokenizer.eos_token_id)]
    return tokenizer.decode(new, skip_special_tokens=True).strip()


def test_batched_answers_equal_a_plain_generate_loop(served: Served):
    expected = [_plain_generate(served.folders["base"], p, 12) for p in PROMPTS]
    # One request with four prompts (one batch) and four concurrent requests (batched by the
    # server as they arrive) give the same answers as one prompt at a time.
    r = requests.post(
        f"{served.url}/v1/completions", json={"prompt": PROMPTS, "max_tokens": 12}, timeout=60
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "text_completion" and body["model"] == served.base
    assert r.headers[VERSION_HEADER] == served.base
    assert [c["text"] for c in body["choices"]] == expected
    assert body["usage"]["completion_tokens"] > 0

    def one(prompt: str) -> str:
        answer = requests.post(
            f"{served.url}/v1/completions", json={"prompt": prompt, "max_tokens": 12}, timeout=60
        )
        return answer.json()["choices"][0]["text"]

    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        assert list(pool.map(one, PROMPTS)) == expected


def test_chat_answers_name_the_version_and_follow_the_openai_shape(served: Served):
    r = requests.post(
        f"{served.url}/v1/chat/completions",
        json={
            "model": "production",
            "messages": [{"role": "user", "content": "What did Orrin Labs launch?"}],
            "max_tokens": 6,
            "user": "ignored-by-freshlm",
        },
        timeout=60,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == served.base
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    models = requests.get(f"{served.url}/v1/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == [served.base]


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"messages": [{"role": "bot", "content": "hi"}]}, "messages.0.role", "'user'"),
        ({"messages": []}, "messages", "at least 1"),
        ({"messages": [{"role": "user", "content": "hi"}], "stream": True}, "stream", "stream"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens", "1"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            "messages",
            "last message must be the user's",
        ),
    ],
)
def test_a_wrong_field_is_answered_with_400_naming_it(served: Served, body, param, words):
    r = requests.post(f"{served.url}/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and words in error["message"], error


def test_other_mistakes_get_clear_answers(served: Served):
    r = requests.post(
        f"{served.url}/v1/completions",
        data="{not json",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = requests.post(
        f"{served.url}/v1/completions", json={"model": "gpt-4", "prompt": "hi"}, timeout=30
    )
    assert r.status_code == 404 and "production" in r.json()["error"]["message"]
    assert served.base in r.json()["error"]["message"]


def test_the_reload_call_needs_the_token(served: Served):
    url = f"{served.url}/v1/admin/reload"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = requests.post(url, json={}, headers=headers, timeout=30)
        assert r.status_code == 401 and "FRESHLM_SERVE_TOKEN" in r.text
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = requests.post(url, json={"version": "nope"}, headers=auth, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "version"
    r = requests.post(url, json={"version": "f" * 32}, headers=auth, timeout=30)
    assert r.status_code == 404 and "list_versions" in r.json()["error"]["message"]
    r = requests.post(url, json={"actor": "tests"}, headers=auth, timeout=30)
    assert r.status_code == 200 and r.json()["result"] == "unchanged"
    assert r.json()["serving"] == served.base


def test_metrics_are_prometheus_text_with_the_serving_version(served: Served):
    requests.post(f"{served.url}/v1/completions", json={"prompt": "x", "max_tokens": 2}, timeout=30)
    r = requests.get(f"{served.url}/metrics", timeout=10)
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert f'freshlm_serve_model_info{{version="{served.base}",backend="transformers"}} 1' in text
    assert 'freshlm_serve_requests_total{endpoint="/v1/completions",status="200"}' in text
    assert 'freshlm_serve_request_seconds_bucket{endpoint="/v1/completions",le="+Inf"}' in text
    assert "# TYPE freshlm_serve_request_seconds histogram" in text
    assert "freshlm_serve_completion_tokens_total" in text


def test_the_embedded_token_is_refused_beyond_loopback(tmp_path):
    embedded = Settings.from_env({"FRESHLM_HOME": str(tmp_path)})
    check_config(embedded, "127.0.0.1")
    with pytest.raises(ServeConfigError, match="FRESHLM_SERVE_TOKEN"):
        check_config(embedded, "0.0.0.0")
    own = Settings.from_env({"FRESHLM_HOME": str(tmp_path), "FRESHLM_SERVE_TOKEN": "s3cret"})
    check_config(own, "0.0.0.0")
