"""The OpenAI-compatible backend against a tiny loopback HTTP server written here."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from codepref.errors import BackendError
from codepref.sampling import GenerationParams, SampleConfig, sample
from codepref.sampling.backends import load_backend
from codepref.sampling.backends.openai_server import OpenAIBackend

SECRET = "sk-test-never-log-me"


class FakeServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, dict, dict]] = []
        self.fail_next: list[int] = []  # HTTP codes to answer before succeeding


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, dict(self.headers), body))
        if self.server.fail_next:
            self.send_response(self.server.fail_next.pop(0))
            self.end_headers()
            self.wfile.write(b'{"error": "busy"}')
            return
        if self.path == "/v1/completions":
            choices = [
                {"index": i, "text": f"    return {body['seed']}_{i}\n\ndef extra():\n"}
                for i in reversed(range(body["n"]))
            ]
        elif self.path == "/v1/chat/completions":
            entry = "below_zero"
            choices = [
                {
                    "index": i,
                    "message": {
                        "role": "assistant",
                        "content": f"Sure:\n```python\ndef {entry}(ops):\n    return {i} < 0\n```\n"
                        "That is all. ```x```",
                    },
                }
                for i in range(body["n"])
            ]
        else:
            self.send_response(404)
            self.end_headers()
            return
        payload = json.dumps({"choices": choices}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server():
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _base(srv: FakeServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/v1"


def test_completions_endpoint_sends_n_stop_seed_and_orders_choices(server):
    backend = OpenAIBackend("served-model", _base(server), api_key=SECRET)
    params = GenerationParams(temperature=0.5, top_p=0.9, max_new_tokens=20, stop=("\ndef ",))
    outs = backend.generate(["def f():\n", "def g():\n"], 3, params, [11, 22])
    assert outs == [[f"    return 11_{i}\n" for i in range(3)], [f"    return 22_{i}\n" for i in range(3)]]
    paths = sorted(r[0] for r in server.requests)
    assert paths == ["/v1/completions", "/v1/completions"]
    body = next(r[2] for r in server.requests if r[2]["prompt"] == "def f():\n")
    assert body == {
        "model": "served-model",
        "n": 3,
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 20,
        "seed": 11,
        "stop": ["\ndef "],
        "prompt": "def f():\n",
    }
    assert all(r[1]["Authorization"] == f"Bearer {SECRET}" for r in server.requests)


def test_chat_endpoint_and_prefill(server):
    backend = OpenAIBackend("m", _base(server))
    params = GenerationParams(stop_at_code_block=True)
    outs = backend.generate([[{"role": "user", "content": "hi"}]], 2, params, [5])
    assert outs[0][1] == "Sure:\n```python\ndef below_zero(ops):\n    return 1 < 0\n```"
    assert "Authorization" not in server.requests[0][1]
    backend.generate(
        [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "We will"}]],
        1,
        GenerationParams(),
        [5],
    )
    body = server.requests[-1][2]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


def test_retries_then_errors_without_leaking_the_key(server, caplog, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    backend = OpenAIBackend("m", _base(server), api_key=SECRET, retries=2)
    server.fail_next = [503]
    with caplog.at_level(logging.DEBUG):
        assert backend.generate(["x"], 1, GenerationParams(), [0])[0][0].startswith("    return 0_0")
        server.fail_next = [400]
        with pytest.raises(BackendError, match="HTTP 400") as err:
            backend.generate(["x"], 1, GenerationParams(), [0])
    assert SECRET not in caplog.text and SECRET not in str(err.value) and SECRET not in repr(backend)
    assert "retrying" in caplog.text


def test_unreachable_server_is_a_backend_error():
    backend = OpenAIBackend("m", "http://127.0.0.1:9/v1", retries=0, timeout=2)
    with pytest.raises(BackendError, match="cannot reach"):
        backend.generate(["x"], 1, GenerationParams(), [0])


def test_sample_stage_through_openai_backend(server, humaneval_rows, monkeypatch):
    monkeypatch.setenv("CODEPREF_TEST_KEY", SECRET)
    cfg = SampleConfig(
        backend="openai", model="m", api_base=_base(server), api_key_env="CODEPREF_TEST_KEY", n=2, chat="true"
    )
    assert SECRET not in repr(cfg)
    backend = load_backend(cfg)
    assert isinstance(backend, OpenAIBackend) and backend.has_chat_template()
    out = sample(humaneval_rows.select([1]), cfg)
    assert out["samples"][0][0].startswith("from typing import List\n\ndef below_zero(ops):")
    seeds = {r[2]["seed"] for r in server.requests}
    assert len(seeds) == 1  # one seed per problem, derived from (seed, task_id)
    assert all(r[1]["Authorization"] == f"Bearer {SECRET}" for r in server.requests)
    seed = seeds.pop()
    completion = sample(humaneval_rows.select([1]), SampleConfig(**{**cfg.__dict__, "chat": "false"}))
    row = humaneval_rows[1]
    assert completion["samples"][0] == [row["prompt"] + f"    return {seed}_{i}\n" for i in range(2)]
