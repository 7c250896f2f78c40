#!/usr/bin/env python3
"""`scripts/bench peers`: llmkernel side by side with what a user would install instead of it.

One llama-server (`-np 4 -c 8192`, SmolLM2-135M from scripts/llama-server's cache). In each round, four bulk
streams (a long essay, max_tokens 384, restarted as soon as one ends, started 2 s apart) keep every slot busy;
after a warm-up, 12 interactive questions ("Name a colour.", max_tokens 4, streaming) arrive one a second.
Rounds cycle through the systems, so a change in the machine's load hits every one of them. Interactive TTFT is
request start to the first non-empty content chunk; a failure (non-200, error event, empty answer) is counted
apart and is never a sample. Bulk throughput is the bulk text received while the questions arrive (the 12 s
from the first question), counted with the server's own POST /tokenize, so every system is counted alike.

Systems: llama-server directly (FIFO); LiteLLM proxy with `max_parallel_requests` = slots ("limit and
reject") and without a limit ("forward everything"); SMG with classes but no reservation, and with its
built-in classes; llmkernel (`--cpus 4`, one slot kept for questions while they come) through its HTTP front
door (bulk as HOUSEKEEPING, questions as USER, by the `X-LLMKernel-Type` header). Every system is driven by the
same httpx code (`chat_stream`). Writes its keys into
target/bench/summary.json (the format of benches/support/summary.rs) and every system's figures into
target/bench/peers.json. Not part of `cargo test` or CI.
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from peers_report import percentile, record_summary, system_figures
from peers_systems import start_systems

SLOTS = 4
# Bulk streams in a round, whatever the server's slots (`--slots 5` leaves one spare).
BULK_STREAMS = 4
CONTEXT = 8192
BULK_TOKENS = 384
BULK_PROMPT = (
    "Write a very long and detailed essay about the history of bread, from the first flatbreads to "
    "modern bakeries, with many examples."
)
# Bulk streams start this far apart (as in PEERS.md), so they do not all end at once.
BULK_STAGGER = 2.0
# After the last bulk stream starts, this long before the first question: every slot is busy.
WARMUP = 2.0
QUESTIONS = 12
QUESTION_GAP = 1.0
QUESTION_TOKENS = 4
QUESTION = "Name a colour."
# A question not answered in this long is a failure ("timeout"); it bounds a round's length on a loaded machine.
QUESTION_TIMEOUT = 30.0
# Idle questions per cycle of rounds: one at a time on an idle server.
IDLE_QUESTIONS = 3


def log(msg):
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Outcome:
    """One request: its TTFT in seconds, or why it failed."""

    def __init__(self, ttft=None, failure=None):
        self.ttft = ttft
        self.failure = failure


async def chat_stream(client, system, kind, prompt, max_tokens, sink):
    """One streaming chat completion through `system` (the same code for every HTTP system); appends
    (arrival time, text) of each content chunk to `sink`."""
    start = time.monotonic()
    body = {
        "model": system.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": True,
        **system.body(kind),
    }
    first = None
    try:
        async with client.stream(
            "POST", system.base + "/chat/completions", json=body, headers=system.headers(kind)
        ) as resp:
            if resp.status_code != 200:
                await resp.aread()
                code = resp.headers.get("x-smg-error-code")
                return Outcome(failure=f"HTTP {resp.status_code}" + (f" {code}" if code else ""))
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    event = json.loads(data)
                except ValueError:
                    return Outcome(failure="bad event")
                if "error" in event:
                    return Outcome(failure="error event")
                for choice in event.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        now = time.monotonic()
                        if first is None:
                            first = now - start
                        sink.append((now, text))
    except httpx.HTTPError as e:
        return Outcome(failure=type(e).__name__)
    if first is None:
        return Outcome(failure="empty answer")
    return Outcome(ttft=first)


class Server:
    """The llama-server of the run, its log, and its /tokenize."""

    def __init__(self, binary, model, workdir, slots):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(workdir) / "llama-server.log"
        self.log = open(self.log_path, "w")
        # Where the server saves slot caches when asked (`POST /slots/N?action=save`): only llmkernel's
        # swap asks; for every other system the flag changes nothing.
        self.slot_dir = Path(workdir) / "slots"
        self.slot_dir.mkdir()
        self.proc = subprocess.Popen(
            [binary, "-m", model, "--host", "127.0.0.1", "--port", str(self.port),
             "-np", str(slots), "-c", str(CONTEXT), "--slot-save-path", str(self.slot_dir)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.model = None

    async def ready(self, client):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if (await client.get(self.url + "/health")).status_code == 200:
                    models = (await client.get(self.url + "/v1/models")).json()
                    self.model = models["data"][0]["id"]
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        raise SystemExit("llama-server did not get ready in 120 s")

    async def idle(self, client):
        """Waits (up to 60 s) until no slot is processing, so a round starts from an idle server."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                slots = (await client.get(self.url + "/slots")).json()
                if not any(s.get("is_processing") for s in slots):
                    return
            except (httpx.HTTPError, ValueError):
                await asyncio.sleep(2)
                return
            await asyncio.sleep(0.2)

    async def tokens(self, client, text):
        if not text:
            return 0
        resp = await client.post(self.url + "/tokenize", json={"content": text})
        return len(resp.json()["tokens"])

    def log_counts(self):
        """Slot launches and cancelled tasks the server has logged so far."""
        self.log.flush()
        text = self.log_path.read_text(errors="replace")
        return text.count("launch_slot_"), text.lower().count("cancel task")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def one_request(client, system, kind, prompt, max_tokens, sink):
    return await chat_stream(client, system, kind, prompt, max_tokens, sink)


async def bulk_loop(client, system, chunks, stream_no, failures):
    request_no = 0
    while True:
        sink = []
        chunks.append((stream_no, request_no, sink))
        outcome = await one_request(client, system, "bulk", BULK_PROMPT, BULK_TOKENS, sink)
        if outcome.failure:
            failures.append(outcome.failure)
            await asyncio.sleep(0.5)  # a failing system is not hammered
        request_no += 1


async def run_round(client, server, system):
    """One round of `system`: returns its question outcomes, bulk tokens and window, and server counts."""
    await server.idle(client)
    await system.before_round()
    launches0, cancels0 = server.log_counts()
    chunks, bulk_failures = [], []
    loops = []
    for n in range(BULK_STREAMS):
        loops.append(asyncio.create_task(bulk_loop(client, system, chunks, n, bulk_failures)))
        await asyncio.sleep(BULK_STAGGER if n < BULK_STREAMS - 1 else WARMUP)
    switches0 = await system.switches()
    window_start = time.monotonic()
    questions = []
    for i in range(QUESTIONS):
        await asyncio.sleep(max(0.0, window_start + i * QUESTION_GAP - time.monotonic()))
        sink = []
        questions.append(asyncio.create_task(asyncio.wait_for(
            one_request(client, system, "interactive", QUESTION, QUESTION_TOKENS, sink),
            QUESTION_TIMEOUT)))
    window_end = window_start + QUESTIONS * QUESTION_GAP
    outcomes = []
    for q in questions:
        try:
            outcomes.append(await q)
        except asyncio.TimeoutError:
            outcomes.append(Outcome(failure="timeout"))
    await asyncio.sleep(max(0.0, window_end - time.monotonic()))
    switches1 = await system.switches()
    for loop in loops:
        loop.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    await system.after_round()
    launches1, cancels1 = server.log_counts()
    bulk_tokens = 0
    for _, _, sink in chunks:
        text = "".join(t for at, t in sink if window_start <= at < window_end)
        bulk_tokens += await server.tokens(client, text)
    return {
        "ttft_ms": [o.ttft * 1e3 for o in outcomes if o.ttft is not None],
        "failures": [o.failure for o in outcomes if o.failure],
        "bulk_failures": bulk_failures,
        "bulk_tokens": bulk_tokens,
        "window_s": window_end - window_start,
        "launches": launches1 - launches0,
        "cancels": cancels1 - cancels0,
        "switches": None if switches0 is None or switches1 is None else switches1 - switches0,
        "load": os.getloadavg()[0],
    }


async def idle_ttft(client, server):
    """TTFT of single questions straight to the idle server."""
    await server.idle(client)
    direct = type("Direct", (), {})()
    direct.base, direct.model = server.url + "/v1", server.model
    direct.body = lambda kind: {}
    direct.headers = lambda kind: {}
    samples = []
    for _ in range(IDLE_QUESTIONS):
        outcome = await chat_stream(client, direct, "interactive", QUESTION, QUESTION_TOKENS, [])
        if outcome.ttft is not None:
            samples.append(outcome.ttft * 1e3)
    return samples


async def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--llama-server", required=True)
    args.add_argument("--model", required=True)
    args.add_argument("--bin-dir", required=True, help="where llmkernel and llmsh are")
    args.add_argument("--bench-dir", required=True, help="target/bench")
    args.add_argument("--rounds", type=int, default=3)
    args.add_argument("--quantum", type=int, default=8)
    args.add_argument("--slots", type=int, default=SLOTS,
                      help="the server's -np; 5 gives every system a slot the 4 bulk streams leave spare "
                           "(figures keyed with _np5)")
    args.add_argument("--only", help="comma-separated system names (for trying the script)")
    opts = args.parse_args()
    bench_dir = Path(opts.bench_dir).resolve()
    bench_dir.mkdir(parents=True, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="peers-", dir=bench_dir)
    started = time.monotonic()
    # Enough connections for 4 bulk streams and 12 questions at once, with room for slow closes.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    timeout = httpx.Timeout(600.0, connect=10.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        server = Server(opts.llama_server, opts.model, workdir, opts.slots)
        systems = []
        try:
            await server.ready(client)
            log(f"llama-server ready on {server.url} ({server.model})")
            systems = await start_systems(client, server, opts, workdir, opts.slots, log)
            if opts.only:
                wanted = opts.only.split(",")
                systems = [s for s in systems if s.name in wanted]
            results = {s.name: [] for s in systems}
            idle = []
            for r in range(opts.rounds):
                idle += await idle_ttft(client, server)
                for system in systems:
                    round_result = await run_round(client, server, system)
                    results[system.name].append(round_result)
                    log(f"round {r + 1}/{opts.rounds} {system.name}: ttft ms "
                        f"{[round(t) for t in round_result['ttft_ms']]}, failures {round_result['failures']}, "
                        f"bulk {round_result['bulk_tokens']} tokens, launches {round_result['launches']}, "
                        f"cancels {round_result['cancels']}, switches {round_result['switches']}")
            idle += await idle_ttft(client, server)
        finally:
            for system in systems:
                system.stop()
            server.stop()
    figures = {s.name: system_figures(s, results[s.name]) for s in systems}
    report = {
        "systems": figures,
        "idle_ttft_ms": sorted(idle),
        "idle_ttft_ms_p50": percentile(idle, 0.5),
        "rounds": opts.rounds,
        "quantum": opts.quantum,
        "slots": opts.slots,
        "minutes": (time.monotonic() - started) / 60,
        "load_end": os.getloadavg(),
        "workdir": workdir,
    }
    name = "peers.json" if opts.slots == SLOTS else f"peers-np{opts.slots}.json"
    (bench_dir / name).write_text(json.dumps(report, indent=2) + "\n")
    record_summary(bench_dir, report)


if __name__ == "__main__":
    asyncio.run(main())
