"""Hostile candidate programs (tests/hostile/) against a real Docker evaluator.

Each program attacks the sandbox at import time (or while it trains) and names on its first line the
status it must get (`# expect: OK` or `# expect: A|B`). Attacks that must fail (reaching the network,
reading a secret, writing outside /tmp and /job/output) raise when they succeed, which would turn the
status into COMPILE_ERROR; when they are blocked the program defines a normal small `Model` (OK).

Header lines the test reads (leading comments of a program):
  `# expect: STATUS[|STATUS] description`  line 1: the acceptable statuses
  `# framework: flax`                      line 2: flax instead of torch
  `# twin: NAME`                           a forging program: its reported accuracy must not beat the honest
                                           program tests/hostile/NAME.py (same Model), never 1.0, and it must
                                           report the same num_params
  `# weakness: KIND[=STATUS] text`         a weakness of the evaluator this program demonstrates; KIND is the
                                           check that fails (status, score, num_params, or hang: no answer at
                                           all). The test still runs every other check strictly, then xfails on
                                           exactly that one, and fails if the weakness is no longer observed (so
                                           the header gets updated)
  `# hidden: N`                           the program hides N numbers outside its parameters: if it gets OK, its
                                           reported size (num_params + num_state) must exceed the honest twin's
                                           num_params by at least N
  `# own-server: why`                      runs on a one-slot `evoprompt serve` process of its own (a program
                                           that can break the server that runs it must not take the shared one,
                                           or the test process, down)
The token EVALUATOR_PORT in a program is replaced by the server's port.

After every program: health says SERVING; no container of this server, no job folder and no new host
process of uid 65534 (nobody) is left (work still running in the other slot is told apart by its job
folder and running container); the server's environment canary appears nowhere in the result, which
stays under 64 KiB. A table of attacks and outcomes is printed at the end of the module.

Programs that can only end at the wall-clock limit run one at a time in the second slot in the
background while the others run in the first, so the module takes about half as long. They ask for a
short limit of their own (`timeout_seconds`, enforced by the same watchdog as the server's limit): the
bombs among them burn a core until they are killed, and the programs beside them need it. The server's
own limit is generous, so that a program that must end by itself (OK, OUTPUT_LIMIT, ...) is never cut
short by a busy machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from evoprompt.evaluator.sandbox import make_sandbox
from evoprompt.evaluator.server import EvaluatorServer
from evoprompt.evaluator.settings import load_settings
from evoprompt.sdk import EvaluationRequest, EvaluationResult, EvaluatorClient, Status
from evoprompt.search.seeds import list_seeds
from tests.support.docker_util import list_containers, require_sandbox_images
from tests.support.servers import HOSTILE, start_server

pytestmark = [pytest.mark.integration, pytest.mark.docker]

CANARY_VAR = "EVOPROMPT_TEST_CANARY"
NOBODY = 65534
STEPS = 20
# a flax job compiles in ~10 s alone, and took past 30 s beside the bombs on 2 loaded cores; only a program that
# hangs where it must end by itself waits this long (and then fails)
SERVER_TIMEOUT = 120.0
LONG_TIMEOUT = 10.0  # the wall-clock limit a program that can only end at it asks for (Program.long)
RPC_TIMEOUT = 300.0
MAX_RESULT_BYTES = 64 * 1024
MAX_RSS_GROWTH_MIB = 200
LEFTOVER_POLL_SECONDS = 15.0
HANG_GRACE_SECONDS = 15.0  # no answer this long after the container is gone: the server will never answer
LABEL_OWNER, LABEL_JOB = "evoprompt.owner", "evoprompt.job"
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


# -- the programs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Weakness:
    kind: str  # status | score | num_params | hang
    status: str | None  # for kind "status": the status the weakness produces
    text: str


@dataclass(frozen=True)
class Program:
    path: Path
    expected: frozenset[str]
    framework: str
    twin: str | None
    weakness: Weakness | None
    own_server: bool = False
    hidden: int = 0

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def long(self) -> bool:
        """Ends only at the wall-clock limit (or an OOM kill): worth running in the background."""
        possible = set(self.expected) | ({self.weakness.status} if self.weakness and self.weakness.status else set())
        return not self.own_server and "TIMEOUT" in possible and "OK" not in possible

    def code(self, port: int) -> str:
        return self.path.read_text().replace("EVALUATOR_PORT", str(port))


def parse_program(path: Path) -> Program:
    lines = path.read_text().splitlines()
    match = re.match(r"# expect: (\S+)", lines[0])
    assert match, f"{path.name}: line 1 must be '# expect: STATUS[|STATUS] description'"
    expected = frozenset(match.group(1).split("|"))
    assert expected <= set(Status.__members__), f"{path.name}: unknown status in {sorted(expected)}"
    header = lines[: next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))]
    framework = "flax" if len(lines) > 1 and lines[1].strip() == "# framework: flax" else "torch"
    twin = weakness = None
    own_server = False
    hidden = 0
    for line in header:
        if line.startswith("# twin: "):
            twin = line.removeprefix("# twin: ").strip()
        elif line.startswith("# weakness: "):
            kind, _, text = line.removeprefix("# weakness: ").partition(" ")
            kind, _, status = kind.partition("=")
            assert kind in ("status", "score", "num_params", "hang"), f"{path.name}: unknown weakness kind {kind!r}"
            weakness = Weakness(kind, status or None, text.strip())
        elif line.startswith("# own-server:"):
            own_server = True
        elif line.startswith("# hidden: "):
            hidden = int(line.removeprefix("# hidden: "))
    return Program(path, expected, framework, twin, weakness, own_server, hidden)


# the long programs last: they run in the background from the start, and are ready by the time their tests come
PROGRAMS = sorted((parse_program(p) for p in HOSTILE.glob("*.py")), key=lambda p: (p.long, p.name))


# -- the environment: server, canary, baselines, background runs, the table ----------------------


def read_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def nobody_processes() -> dict[tuple[int, str], str]:
    """{(pid, start time): command} of host processes whose real uid is 65534."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = f.read()
            with open(f"/proc/{entry}/stat") as f:
                start = f.read().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            continue  # gone meanwhile
        uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), None)
        if uid == str(NOBODY):
            name = next((line.split(None, 1)[1] for line in status.splitlines() if line.startswith("Name:")), "?")
            found[(int(entry), start)] = name.strip()
    return found


def container_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            match = _CONTAINER_ID.search(f.read())
    except OSError:
        return None
    return match.group(0) if match else None


def find_leftovers(docker, owner: str, work_dir: Path, baseline: dict[tuple[int, str], str]) -> list[str]:
    """What a server's evaluations left behind: containers, job folders, processes of uid 65534.

    A running container whose box (the job folder only it mounts: work/<instance>/pool/<box>, or
    work/<instance>/jobs/<job>/<box> when started for its job) exists is the pool's (waiting for a job: no READY
    in its input) or work in flight (the other slot's); job folders beyond the jobs in flight, and
    everything else of this server's, must be gone. Processes in containers of other servers on this
    host are not ours to judge."""
    boxes = {p.name: p for p in [*work_dir.glob("*/pool/*"), *work_dir.glob("*/jobs/*/*")] if (p / "input").is_dir()}
    containers = list_containers(docker)
    ours = [c for c in containers if c.labels.get(LABEL_OWNER) == owner]
    alive = {c.labels.get(LABEL_JOB) for c in ours if c.status == "running"} & set(boxes)
    found = [f"container {c.name} ({c.status})" for c in ours if c.labels.get(LABEL_JOB) not in alive]
    found += [f"box {name} without a running container" for name in sorted(set(boxes) - alive)]
    busy = sum((boxes[name] / "input" / "ready").exists() for name in alive)
    folders = sorted(p.name for p in work_dir.glob("*/jobs/*"))
    if len(folders) > busy:
        found.append(f"job folders {folders} with {busy} job(s) running")
    excused = {c.id for c in containers if c.labels.get(LABEL_OWNER) != owner or c.labels.get(LABEL_JOB) in alive}
    for (pid, start), name in nobody_processes().items():
        if (pid, start) in baseline or container_of(pid) in excused:
            continue
        found.append(f"process {pid} {name} (uid {NOBODY}, container {str(container_of(pid))[:12]})")
    return found


def wait_for_no_leftovers(check, limit: float = LEFTOVER_POLL_SECONDS) -> list[str]:
    end = time.monotonic() + limit
    while True:
        found = check()
        if not found or time.monotonic() > end:
            return found
        time.sleep(0.5)


@dataclass
class Row:
    attack: str
    expected: str
    observed: str
    leftovers: str
    note: str = ""


@dataclass
class HostileEnv:
    server: EvaluatorServer
    canary: str
    baseline: dict[tuple[int, str], str]
    started: float
    rows: list[Row] = field(default_factory=list)
    rss: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # name: before, peak, after
    background: dict[str, Future[EvaluationResult]] = field(default_factory=dict)
    _twins: dict[str, EvaluationResult] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    @property
    def docker(self):
        return self.server.executor.sandbox.client

    @property
    def owner(self) -> str:
        return self.server.executor.sandbox.owner

    @property
    def work_dir(self) -> Path:
        return self.server.settings.work_dir

    def request(self, program: Program, *, salt: str = "", timeout_seconds: float = 0.0) -> EvaluationRequest:
        """`timeout_seconds`: 0 for the server's limit, or LONG_TIMEOUT for a program that can only end at it."""
        code = program.code(self.server.port) + (f"\n# {salt}\n" if salt else "")
        timeout_seconds = timeout_seconds or (LONG_TIMEOUT if program.long else 0.0)
        return EvaluationRequest("mnist1d", program.framework, code, max_steps=STEPS,
                                 request_id=f"{program.name}-{uuid.uuid4().hex[:8]}", timeout_seconds=timeout_seconds)

    def evaluate(self, request: EvaluationRequest) -> EvaluationResult:
        with EvaluatorClient(self.server.endpoint) as client:
            return client.evaluate_request(request, timeout=RPC_TIMEOUT)

    def start_background(self, programs: list[Program]) -> None:
        """Run the long programs one at a time (so one slot stays free for the others)."""
        if self._thread is not None or not programs:
            return
        for p in programs:
            self.background[p.name] = Future()

        def run() -> None:
            for p in programs:
                try:
                    self.background[p.name].set_result(self.evaluate(self.request(p)))
                except BaseException as exc:  # noqa: BLE001 - the waiting test reports it
                    self.background[p.name].set_exception(exc)

        self._thread = threading.Thread(target=run, name="hostile-background", daemon=True)
        self._thread.start()

    def result_of(self, program: Program) -> EvaluationResult:
        if program.name in self.background:
            return self.background[program.name].result(timeout=RPC_TIMEOUT * 4)
        return self.evaluate(self.request(program))

    def twin(self, name: str) -> EvaluationResult:
        if name not in self._twins:
            result = self.evaluate(self.request(parse_program(HOSTILE / f"{name}.py")))
            assert result.ok, f"the honest twin {name} failed: {result.status.name} {result.message}"
            self._twins[name] = result
        return self._twins[name]

    def wait_idle(self, limit: float = 600.0) -> None:
        end = time.monotonic() + limit
        with EvaluatorClient(self.server.endpoint) as client:
            while time.monotonic() < end:
                info = client.server_info()
                if info.running == 0 and info.queued == 0:
                    return
                time.sleep(0.5)
        raise AssertionError(f"the evaluator was still busy after {limit:g} s")

    def leftovers(self) -> list[str]:
        return find_leftovers(self.docker, self.owner, self.work_dir, self.baseline)

    def wait_for_no_leftovers(self, limit: float = LEFTOVER_POLL_SECONDS) -> list[str]:
        return wait_for_no_leftovers(self.leftovers, limit)

    def serving(self) -> bool:
        with grpc.insecure_channel(self.server.endpoint) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def report(self, write) -> None:
        minutes = (time.monotonic() - self.started) / 60
        widths = [max(len(getattr(r, col)) for r in [Row("attack", "expected", "observed", "leftovers"), *self.rows])
                  for col in ("attack", "expected", "observed", "leftovers")]
        write("")
        write(f"hostile programs against the docker evaluator ({len(self.rows)} rows, module took {minutes:.1f} min)")
        for r in [Row("attack", "expected", "observed", "leftovers", "note"), *self.rows]:
            cells = [r.attack, r.expected, r.observed, r.leftovers]
            line = "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  " + r.note
            write(line.rstrip())


@pytest.fixture(scope="module")
def env(request, tmp_path_factory) -> Iterator[HostileEnv]:
    require_sandbox_images()
    started = time.monotonic()
    canary = f"canary-{secrets.token_hex(16)}"
    previous = os.environ.get(CANARY_VAR)
    os.environ[CANARY_VAR] = canary  # the server runs in this process: its environment holds the canary
    baseline = nobody_processes()
    server = start_server(tmp_path_factory.mktemp("hostile-home"), "docker", slots=2, timeout=SERVER_TIMEOUT,
                          memory_gb=1.0)
    hostile = HostileEnv(server, canary, baseline, started)
    try:
        yield hostile
    finally:
        server.stop()
        if hostile._thread is not None:
            hostile._thread.join(timeout=120)
        if previous is None:
            os.environ.pop(CANARY_VAR, None)
        else:
            os.environ[CANARY_VAR] = previous
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and hostile.rows:
            # teardown output is captured (and dropped for passing tests): print past the capture
            with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
                reporter.ensure_newline()
                hostile.report(reporter.write_line)


def _selected_long_programs(request) -> list[Program]:
    selected = {item.callspec.params["program"].name for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec") and "program" in item.callspec.params}
    return [p for p in PROGRAMS if p.long and p.name in selected]


# -- one test per program ----------------------------------------------------------------------


def _with_rss(call):
    """call()'s value and (RSS before, peak RSS while it ran, RSS after) of this process, in MiB."""
    before = read_rss_mib()
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            peak[0] = max(peak[0], read_rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        value = call()
    finally:
        stop.set()
        sampler.join(timeout=5)
    after = read_rss_mib()
    return value, (before, max(peak[0], after), after)


def _score_failures(program: Program, result: EvaluationResult, env: HostileEnv) -> dict[str, str]:
    if program.twin is None:
        return {}
    twin = env.twin(program.twin)
    failures = {}
    if (result.val_accuracy > twin.val_accuracy or result.test_accuracy > twin.test_accuracy
            or result.val_accuracy >= 1.0 or result.test_accuracy >= 1.0):
        failures["score"] = (f"reported val/test accuracy {result.val_accuracy:.3f}/{result.test_accuracy:.3f}, "
                             f"the honest twin gets {twin.val_accuracy:.3f}/{twin.test_accuracy:.3f}")
    if result.status is Status.OK and result.num_params != twin.num_params:
        failures["num_params"] = f"reported num_params {result.num_params}, the honest twin has {twin.num_params}"
    if result.status is Status.OK and result.num_params + result.num_state < twin.num_params + program.hidden:
        failures["num_params"] = (f"reported size {result.num_params} + {result.num_state} misses the {program.hidden} "
                                  f"numbers it hides (the honest twin has {twin.num_params})")
    return failures


def _one_line(text: str, limit: int = 240) -> str:
    text = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _run_on_own_server(env: HostileEnv, program: Program, home: Path) -> tuple[EvaluationResult | None, list[str]]:
    """Evaluate on a fresh one-slot `evoprompt serve` process; None when it never answers.

    A separate process, so that a server this program breaks cannot hang the test process (a gRPC
    handler that waits forever keeps the interpreter from exiting). Returns what that server holds
    afterwards (containers, job folders, and whether it exited on SIGTERM), then removes its folder
    with `rm -rf` (a tree may be too deep for Python's recursive shutil.rmtree)."""
    settings = load_settings(overrides={"backend": "docker", "home": home})
    owner = make_sandbox("docker", owner_key=str(settings.store_path.resolve())).owner
    command = [sys.executable, "-m", "evoprompt.sdk.cli", "serve", "--host", "127.0.0.1", "--port", "0",
               "--backend", "docker", "--slots", "1", "--timeout", str(SERVER_TIMEOUT), "--memory-gb", "1",
               "--home", str(home)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    box: list[EvaluationResult] = []
    done = threading.Event()
    leftovers: list[str] = []
    try:
        line = proc.stdout.readline() if proc.stdout else ""  # "evaluator listening on HOST:PORT (...)"
        match = re.search(r"listening on (\S+):(\d+)", line)
        assert match, f"`evoprompt serve` did not start: {line!r}"
        request = replace(env.request(program), code=program.code(int(match.group(2))))

        def evaluate() -> None:
            try:
                with EvaluatorClient(f"{match.group(1)}:{match.group(2)}") as client:
                    box.append(client.evaluate_request(request, timeout=RPC_TIMEOUT))
            except Exception:  # noqa: BLE001 - no answer: the caller looks at the server instead
                pass
            finally:
                done.set()

        threading.Thread(target=evaluate, daemon=True).start()
        seen, gone_since, end = False, None, time.monotonic() + RPC_TIMEOUT
        while not done.wait(0.5) and time.monotonic() < end:
            present = bool(list_containers(env.docker, filters={"label": f"{LABEL_OWNER}={owner}"}))
            seen = seen or present
            gone_since = None if present or not seen else (gone_since or time.monotonic())
            if gone_since is not None and time.monotonic() - gone_since > HANG_GRACE_SECONDS:
                break
        check = lambda: find_leftovers(env.docker, owner, settings.work_dir, env.baseline)  # noqa: E731
        leftovers = wait_for_no_leftovers(check, limit=LEFTOVER_POLL_SECONDS if box else 0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            leftovers.append("a server process that did not exit within 10 s of SIGTERM (killed)")
            proc.kill()
            proc.wait(timeout=30)
        subprocess.run(["rm", "-rf", "--one-file-system", str(home)], check=False)
    return (box[0] if box else None), leftovers


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_hostile_program(env: HostileEnv, program: Program, request, tmp_path_factory) -> None:
    """One attack: the status it must get, and nothing left behind or leaked whatever it did."""
    env.start_background(_selected_long_programs(request))
    own_leftovers: list[str] = []
    if program.own_server:
        result, own_leftovers = _run_on_own_server(env, program, tmp_path_factory.mktemp(f"own-{program.name}"))
    elif program.name.startswith("flood_"):  # watch the server's memory while the sandbox floods its logs
        result, env.rss[program.name] = _with_rss(lambda: env.result_of(program))
    else:
        result = env.result_of(program)

    observed = result.status.name if result is not None else "NO ANSWER"
    leftovers = env.wait_for_no_leftovers()
    serving = env.serving()
    blob = result.to_proto().SerializeToString() if result is not None else b""
    failures: dict[str, str] = {}
    if result is None:
        failures["hang"] = (f"no answer {HANG_GRACE_SECONDS:g} s after its container was removed; its own server "
                            f"still holds: {'; '.join(own_leftovers) or 'nothing'}")
    else:
        if observed not in program.expected:
            failures["status"] = f"got {observed}, expected {'|'.join(sorted(program.expected))}: {result.message}"
        failures |= _score_failures(program, result, env)
        leftovers += [f"(own server) {x}" for x in own_leftovers]
    weak = program.weakness
    known = {k for k in failures if weak and k == weak.kind and (k != "status" or observed == weak.status)}
    env.rows.append(Row(program.name, "|".join(sorted(program.expected)), observed,
                        "; ".join(leftovers) or "none",
                        _one_line(f"known weakness ({weak.kind}): {failures[weak.kind]}") if known else ""))

    assert serving, "the evaluator's health check no longer says SERVING"
    assert not leftovers, f"left behind after {program.name}: {leftovers}"
    assert env.canary.encode() not in blob, "the server's canary environment value reached the result"
    assert len(blob) < MAX_RESULT_BYTES, f"the serialized result is {len(blob):,} bytes"
    unexpected = {k: v for k, v in failures.items() if k not in known}
    assert not unexpected, f"{program.name}: {unexpected}\n{result.stderr_tail[-2000:] if result else ''}"
    if weak is not None:
        if known:
            pytest.xfail(f"known evaluator weakness: {weak.text}")
        pytest.fail(f"the weakness in {program.name}'s header is no longer observed (update it): {weak.text}")


# -- neighbours, memory, cleanliness ------------------------------------------------------------


def _program(name: str) -> Program:
    return parse_program(HOSTILE / f"{name}.py")


def test_neighbours_cannot_change_a_benign_result(env: HostileEnv) -> None:
    """The torch CNN seed gets the same result alone and beside a memory bomb and a fork bomb."""
    env.wait_idle()
    cnn = next(s for s in list_seeds("mnist1d", "torch") if s.name == "cnn").code
    salt = uuid.uuid4().hex

    def benign(tag: str) -> EvaluationRequest:  # a comment keeps the result store from answering
        return EvaluationRequest("mnist1d", "torch", f"{cnn}\n# isolation: {tag} {salt}\n", max_steps=100, seed=3,
                                 request_id=f"benign-{tag}-{salt[:8]}")

    alone = env.evaluate(benign("alone"))
    assert alone.ok, alone.message
    # FIFO with two slots: the memory bomb and the benign model start together, the fork bomb takes
    # the memory bomb's slot as soon as it is killed, while the benign model is still training.
    requests = [env.request(_program("memory_bomb_numpy"), salt=salt),
                benign("beside-bombs"),
                env.request(_program("fork_bomb_os"), salt=salt, timeout_seconds=10)]
    with EvaluatorClient(env.server.endpoint) as client:
        results = {r.request_id: r for r in client.evaluate_many(requests, timeout=RPC_TIMEOUT)}
    memory_bomb, beside, fork_bomb = (results[r.request_id] for r in requests)
    assert memory_bomb.status is Status.OOM, memory_bomb.message
    assert fork_bomb.status is Status.TIMEOUT, fork_bomb.message
    assert beside.ok, beside.message

    def essence(r: EvaluationResult) -> tuple:
        return r.val_accuracy, r.test_accuracy, r.num_params, r.best_step

    leftovers = env.wait_for_no_leftovers()
    env.rows.append(Row("neighbours: cnn alone vs beside bombs", "identical", "identical"
                        if essence(alone) == essence(beside) else f"{essence(alone)} vs {essence(beside)}",
                        "; ".join(leftovers) or "none"))
    assert essence(alone) == essence(beside)
    assert not leftovers, leftovers


def test_server_memory_stays_flat_under_output_floods(env: HostileEnv) -> None:
    """The server's RSS grows by less than 200 MiB while candidates flood stdout and stderr."""
    for name in ("flood_stdout", "flood_stderr"):
        if name not in env.rss:  # the flood's own test did not run (deselected): run it here
            env.twin("honest_twin")  # warm up first (task data, clients), so that only the flood is measured
            program = _program(name)
            result, env.rss[name] = _with_rss(lambda p=program: env.evaluate(env.request(p, salt=uuid.uuid4().hex)))
            assert result.status.name in program.expected, result.message
    growth = {name: max(peak, after) - before for name, (before, peak, after) in env.rss.items()}
    env.rows.append(Row("server RSS across floods", f"< {MAX_RSS_GROWTH_MIB} MiB",
                        ", ".join(f"{n} +{g:.0f} MiB" for n, g in growth.items()), "-"))
    assert all(g < MAX_RSS_GROWTH_MIB for g in growth.values()), growth


def test_nothing_is_left_once_the_evaluator_is_idle(env: HostileEnv) -> None:
    env.wait_idle()
    leftovers = env.wait_for_no_leftovers()
    assert not leftovers, leftovers
    assert not any(env.work_dir.glob("*/jobs/*"))
    assert env.serving()
