"""Third-party OpenAI clients against llmkernel's front door.

Run by the Rust integration test `http::clients` in the venv of `scripts/python-clients`, with a real
kernel in front of the fake LLM server (whose answer is `t0 t1 t2 ...`). It passes the front door's
Unix socket in LLMKERNEL_HTTP_SOCKET. Plain unittest, so the venv needs nothing beyond the clients.
"""

import json
import os
import threading
import time
import unittest

import httpx
import httpx2
import openai

SOCKET = os.environ["LLMKERNEL_HTTP_SOCKET"]
STEP_SECONDS = 20


def answer(n):
    return "".join(f"t{i} " for i in range(n))


def sdk():
    transport = httpx2.HTTPTransport(uds=SOCKET)
    http_client = openai.DefaultHttpx2Client(transport=transport)
    return openai.OpenAI(base_url="http://localhost/v1", api_key="unused", http_client=http_client)


def plain():
    return httpx.Client(transport=httpx.HTTPTransport(uds=SOCKET), base_url="http://localhost", timeout=STEP_SECONDS)


def rows_with(prompt):
    with plain() as c:
        rows = c.get("/v1/processes").json()["data"]
    return [r for r in rows if prompt in (r.get("prompt") or "")]


def wait_until(what, cond):
    deadline = time.monotonic() + STEP_SECONDS
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class OfficialSdk(unittest.TestCase):
    def test_a_whole_answer_with_usage(self):
        reply = sdk().chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "[tokens=5] whole"}], temperature=0.1
        )
        self.assertEqual(reply.choices[0].message.content, answer(5))
        self.assertEqual(reply.choices[0].finish_reason, "stop")
        self.assertEqual(reply.usage.completion_tokens, 5)

    def test_a_streamed_answer_through_the_iterator_with_usage(self):
        stream = sdk().chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": "[tokens=7] streamed"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, ids, usage = "", set(), None
        for chunk in stream:
            ids.add(chunk.id)
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage:
                usage = chunk.usage
        self.assertEqual(text, answer(7))
        self.assertEqual(len(ids), 1)
        self.assertEqual(usage.completion_tokens, 7)

    def test_closing_a_stream_kills_its_process(self):
        prompt = "[tokens=3000] [delay=20] closed early"
        stream = sdk().chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": prompt}], stream=True
        )
        for chunk in stream:
            if chunk.choices and "t2 " in (chunk.choices[0].delta.content or ""):
                break
        stream.close()
        wait_until("the process killed", lambda: any("Killed" in str(r["exit"]) for r in rows_with("closed early")))

    def test_a_bad_request_raises_and_a_kill_is_not_retried(self):
        with self.assertRaises(openai.BadRequestError):
            sdk().chat.completions.create(model="fake-model", messages=[])
        prompt = "[tokens=3000] [delay=20] killed whole"
        caught = []

        def ask():
            try:
                sdk().chat.completions.create(model="fake-model", messages=[{"role": "user", "content": prompt}])
            except openai.APIStatusError as e:
                caught.append(e)

        asking = threading.Thread(target=ask)
        asking.start()
        wait_until("the process to run", lambda: any(r["state"] == "Running" for r in rows_with("killed whole")))
        pid = rows_with("killed whole")[0]["pid"]
        with plain() as c:
            self.assertEqual(c.delete(f"/v1/processes/{pid}").status_code, 200)
        asking.join(STEP_SECONDS)
        # A retry would start the long answer again and keep the thread busy far past the join.
        self.assertFalse(asking.is_alive(), "the SDK retried a killed request")
        self.assertEqual(len(caught), 1)
        self.assertEqual(caught[0].status_code, 409)
        self.assertEqual(caught[0].response.headers["x-should-retry"], "false")
        self.assertEqual(caught[0].response.headers["x-llmkernel-pid"], str(pid))
        self.assertEqual(rows_with("killed whole"), [], "no second process")

    def test_a_tool_call_round_trip_whole_and_streamed(self):
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ]
        asked = [{"role": "user", "content": "[tokens=0] weather in Paris?"}]
        reply = sdk().chat.completions.create(model="fake-model", messages=asked, tools=tools)
        choice = reply.choices[0]
        self.assertEqual(choice.finish_reason, "tool_calls")
        call = choice.message.tool_calls[0]
        self.assertEqual(call.function.name, "get_weather")
        self.assertEqual(json.loads(call.function.arguments), {"city": "Paris"})

        stream = sdk().chat.completions.create(model="fake-model", messages=asked, tools=tools, stream=True)
        calls, finish = {}, None
        for chunk in stream:
            for c in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                got = calls.setdefault(c.index, {"id": None, "name": "", "arguments": ""})
                got["id"] = c.id or got["id"]
                got["name"] += (c.function.name or "") if c.function else ""
                got["arguments"] += (c.function.arguments or "") if c.function else ""
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        self.assertEqual(finish, "tool_calls")
        self.assertEqual(calls[0]["name"], "get_weather")
        self.assertTrue(calls[0]["id"])
        self.assertEqual(json.loads(calls[0]["arguments"]), {"city": "Paris"})

        # The fake calls a tool whenever one is offered: the follow-up offers none, and asks for words.
        follow_up = [{"role": "user", "content": "weather in Paris?"}] + [
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ]
        reply = sdk().chat.completions.create(model="fake-model", messages=follow_up, max_tokens=2)
        self.assertEqual(reply.choices[0].message.content, answer(2))


class PlainHttpx(unittest.TestCase):
    def test_server_sent_events_read_by_hand(self):
        body = {"messages": [{"role": "user", "content": "[tokens=4] by hand"}], "stream": True}
        text, done = "", False
        with plain() as c, c.stream("POST", "/v1/chat/completions", json=body) as r:
            self.assertEqual(r.status_code, 200)
            self.assertTrue(r.headers["x-llmkernel-pid"].isdigit())
            for line in r.iter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    text += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        self.assertTrue(done)
        self.assertEqual(text, answer(4))

    def test_models_and_health(self):
        with plain() as c:
            self.assertEqual(c.get("/v1/models").json()["data"][0]["id"], "fake-model")
            self.assertEqual(c.get("/health").json()["status"], "ok")


if __name__ == "__main__":
    unittest.main()
