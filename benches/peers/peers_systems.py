"""The systems `scripts/bench peers` compares, each in front of the run's one llama-server, configured as
benches/peers/README.md describes: how each is started, how a request names its class, and, for llmkernel,
how its context switches are read. Every one of them, llmkernel included, is an OpenAI-compatible HTTP
endpoint driven by the same client code."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import httpx

LITELLM_KEY = "sk-bench-peers"
BENCH_MODEL = "bench"


def _free_ports(n):
    """n distinct free loopback ports: every socket is held open until all are bound, so the kernel
    cannot hand the same port out twice."""
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _free_port():
    return _free_ports(1)[0]


class System:
    """An OpenAI-compatible endpoint; subclasses say how a request names its class."""

    def __init__(self, name, how, base, model, versions):
        self.name, self.how, self.base, self.model, self.versions = name, how, base, model, versions
        self.procs = []

    def body(self, kind):
        return {}

    def headers(self, kind):
        return {}

    async def before_round(self):
        pass

    async def after_round(self):
        pass

    async def switches(self):
        return None

    def spawn(self, argv, log_path, env=None):
        log = open(log_path, "w")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        self.procs.append((proc, log))
        return proc

    def stop(self):
        for proc, log in self.procs:
            if proc.poll() is None:
                # Each peer runs in a session of its own: its workers go with it.
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.close()
        self.procs = []


async def wait_ok(client, what, check, seconds, proc=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode} while starting (see its log)")
        try:
            if await check():
                return
        except (httpx.HTTPError, ValueError):
            pass
        await asyncio.sleep(0.5)
    raise SystemExit(f"{what} did not get ready in {seconds} s")


class LiteLlm(System):
    """LiteLLM's proxy; `priority` in the body (lower first)."""

    def body(self, kind):
        return {"priority": 0 if kind == "interactive" else 1}

    def headers(self, kind):
        return {"Authorization": f"Bearer {LITELLM_KEY}"}


async def start_litellm(client, server, venv_bin, workdir, slots, limit):
    name = "litellm-limit" if limit else "litellm-open"
    port = _free_port()
    params = [
        "      model: openai/" + server.model,
        "      api_base: " + server.url + "/v1",
        "      api_key: none",
    ]
    if limit:
        params.append(f"      max_parallel_requests: {slots}")
    config = Path(workdir) / f"{name}.yaml"
    config.write_text("\n".join([
        "model_list:",
        f"  - model_name: {BENCH_MODEL}",
        "    litellm_params:",
        *params,
        "general_settings:",
        f"  master_key: {LITELLM_KEY}",
        "",
    ]))
    how = (f"`max_parallel_requests: {slots}` on the deployment (limit and reject)" if limit
           else "no limit (forward everything)")
    system = LiteLlm(name, f"LiteLLM proxy, `priority` in the body, {how}", f"http://127.0.0.1:{port}/v1",
                     BENCH_MODEL, {"litellm": version("litellm")})
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    proc = system.spawn([str(Path(venv_bin) / "litellm"), "--config", str(config), "--host", "127.0.0.1",
                  "--port", str(port), "--num_workers", "1"], Path(workdir) / f"{name}.log", env)

    async def ready():
        return (await client.get(f"http://127.0.0.1:{port}/health/liveliness")).status_code == 200

    await wait_ok(client, name, ready, 300, proc)
    return system


class Smg(System):
    """SGLang's model gateway; the class is the `x-smg-priority` header."""

    def headers(self, kind):
        return {"x-smg-priority": "interactive" if kind == "interactive" else "bulk"}


# Every class without a reservation, otherwise SMG's built-in defaults: bulk work may fill every slot. 1.13.0
# rejects the documented `reserved:` and wants every field of a class it is given.
SMG_DEFAULTS = {  # class: (queue_size, queue_timeout_secs, starvation_threshold_secs, can_preempt)
    "system": (64, 30, 5, "true"),
    "interactive": (256, 30, 5, "true"),
    "default": (512, 60, 30, "false"),
    "bulk": (1024, 300, 120, "false"),
}
FLAT_CLASSES = "classes:\n" + "".join(
    f"  {c}:\n    reserved_floor: 0\n    reserved_per_slot: 0.0\n    queue_size: {q}\n"
    f"    queue_timeout_secs: {t}\n    starvation_threshold_secs: {st}\n    can_preempt: {p}\n"
    for c, (q, t, st, p) in SMG_DEFAULTS.items())


async def start_smg(client, server, venv_bin, workdir, slots, flat):
    name = "smg-flat" if flat else "smg-classes"
    port, metrics = _free_ports(2)
    argv = [str(Path(venv_bin) / "smg"), "launch", "--host", "127.0.0.1", "--port", str(port),
            "--prometheus-host", "127.0.0.1", "--prometheus-port", str(metrics), "--backend", "openai",
            "--priority-scheduler-enabled", "--priority-scheduler-default-max-class", "interactive"]
    if flat:
        config = Path(workdir) / "smg-flat.yaml"
        config.write_text(FLAT_CLASSES)
        argv += ["--priority-scheduler-config", str(config)]
    how = ("classes without reservation (every class `reserved_floor: 0`, `reserved_per_slot: 0.0`)" if flat
           else "built-in classes (one slot kept for `system`, one for `interactive`)")
    system = Smg(name, f"SMG, `x-smg-priority` header, {how}", f"http://127.0.0.1:{port}/v1", server.model,
                 {"smg": version("smg")})
    log_path = Path(workdir) / f"{name}.log"
    proc = system.spawn(argv, log_path)
    base = f"http://127.0.0.1:{port}"

    async def up():
        return (await client.get(base + "/health")).status_code < 500

    await wait_ok(client, name, up, 120, proc)
    # --worker-urls takes no labels: without max_running_requests a worker counts as 64 slots.
    worker = {"url": server.url, "labels": {"max_running_requests": str(slots)}}
    resp = await client.post(base + "/workers", json=worker)
    if resp.status_code >= 300:
        raise SystemExit(f"{name}: POST /workers answered {resp.status_code}: {resp.text}")

    async def serves():
        body = {"model": server.model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
        return (await client.post(base + "/v1/chat/completions", json=body)).status_code == 200

    await wait_ok(client, f"{name} with its worker", serves, 120, proc)
    text = log_path.read_text(errors="replace")
    if re.search(r"ERROR.*(scheduler|priority)", text, re.IGNORECASE):
        print(f"[peers] warning: {name} logged a scheduler error (it falls back to no classes); see {log_path}",
              file=sys.stderr)
    return system


class Llmkernel(System):
    """A fresh llmkernel per round (`--cpus` = slots, the reservation rules on), reached through its HTTP front
    door on loopback like every other HTTP system; the class is the `X-LLMKernel-Type` header."""

    def __init__(self, server, bin_dir, workdir, slots, quantum, versions):
        super().__init__("llmkernel", f"llmkernel `--cpus {slots} --quantum {quantum}`, `[scheduler] "
                         "reserved_slots = 1` (one slot kept from bulk work while questions come), `[swap]` in "
                         "the server's `--slot-save-path` with `min_tokens = 64`, through its HTTP front door "
                         "(`[http] listen` on loopback), `X-LLMKernel-Type: housekeeping|user`",
                         None, server.model, versions)
        self.server, self.bin_dir, self.workdir = server, Path(bin_dir), Path(workdir)
        self.slots, self.quantum, self.round = slots, quantum, 0
        self.socket = None

    def headers(self, kind):
        return {"X-LLMKernel-Type": "housekeeping" if kind == "bulk" else "user"}

    async def before_round(self):
        self.round += 1
        here = self.workdir / f"llmkernel-{self.round}"
        here.mkdir()
        port = _free_port()
        (here / "config.toml").write_text(
            f'[http]\nlisten = "127.0.0.1:{port}"\n\n[scheduler]\nreserved_slots = 1\n\n'
            # A switched-out conversation is saved and restored rather than read again: on two cores a
            # 130-token re-read is a 300 ms step that every sequence of the batch waits for.
            f'[swap]\ndir = "{self.server.slot_dir}"\nmin_tokens = 64\n')
        self.socket = str(here / "k.sock")
        proc = self.spawn([str(self.bin_dir / "llmkernel"), "--config", str(here / "config.toml"),
                           "--socket", self.socket, "--state-dir", str(here / "state"),
                           "--backend", self.server.url + "/v1", "--cpus", str(self.slots),
                           "--quantum", str(self.quantum)], here / "kernel.log")
        self.base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 60
        while await self.switches() is None or not await self._door_open():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"llmkernel did not start; see {here / 'kernel.log'}")
            await asyncio.sleep(0.2)

    async def _door_open(self):
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return (await client.get(self.base + "/models")).status_code == 200
        except httpx.HTTPError:
            return False

    async def after_round(self):
        self.stop()

    async def switches(self):
        """The kernel's context-switch count, from `llmsh -c sched` (the kernel's own client, for reading)."""
        proc = await asyncio.create_subprocess_exec(
            str(self.bin_dir / "llmsh"), "--socket", self.socket, "-c", "sched",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
        found = re.search(rb"context switches:\s*(\d+)", out)
        return int(found.group(1)) if proc.returncode == 0 and found else None


async def start_systems(client, server, opts, workdir, slots, log):
    venv_bin = Path(sys.executable).parent
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    wanted = opts.only.split(",") if opts.only else None
    systems = [System("direct", "llama-server directly (FIFO)", server.url + "/v1", server.model,
                      {"llama-server": Path(opts.llama_server).name})]
    starters = [
        ("litellm-limit", lambda: start_litellm(client, server, venv_bin, workdir, slots, True)),
        ("litellm-open", lambda: start_litellm(client, server, venv_bin, workdir, slots, False)),
        ("smg-flat", lambda: start_smg(client, server, venv_bin, workdir, slots, True)),
        ("smg-classes", lambda: start_smg(client, server, venv_bin, workdir, slots, False)),
    ]
    try:
        for name, start in starters:
            if wanted is None or name in wanted:
                log(f"starting {name}")
                systems.append(await start())
    except BaseException:
        for s in systems:
            s.stop()
        raise
    systems.append(Llmkernel(server, opts.bin_dir, workdir, slots, opts.quantum, {"llmkernel": commit}))
    return systems
