"""CLRS-30 tasks: held-out data, server-side scoring, the seeds, every algorithm, broken candidates,
the search client - against a real server and real clrs-cpu containers.

The server here is sized for a 2-core CI machine: 2 validation and 2 test samples per algorithm and
test graphs of 16 nodes instead of 64 (a 64-node bubble sort test sample is ~2,000 message-passing
steps over 64^3 triplets: minutes on one core); with validation and test graphs of one size, the
harness compiles one prediction for both. The full sizes are dm-clrs' and run in
bench/clrs_baselines.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evoprompt.evaluator.outputs import BadOutput
from evoprompt.evaluator.server import EvaluatorServer
from evoprompt.evaluator.tasks import configured_tasks
from evoprompt.evaluator.tasks.clrs import CLRS30_ALGORITHMS, ClrsTask, default_eval_samples
from evoprompt.sdk import EvaluationRequest, EvaluationResult, EvaluatorClient, Status
from evoprompt.search.seeds import list_seeds
from tests.support.docker_util import require_sandbox_images
from tests.support.servers import start_server

clrs = pytest.importorskip("clrs", reason="dm-clrs is not installed (pip install -e '.[clrs]')")

EVAL_SAMPLES = 2
TEST_LENGTH = 20  # the unit tests' held-out data: test graphs larger than validation ones, as in CLRS
SMOKE_TEST_LENGTH = 16  # the server's
SEEDS = {s.name: s.code for s in list_seeds("clrs/bfs", "haiku")}
STANDARD = SEEDS["standard"]


def small_task(algorithm: str) -> ClrsTask:
    task = configured_tasks("", EVAL_SAMPLES, TEST_LENGTH)[f"clrs/{algorithm}"]
    assert isinstance(task, ClrsTask)
    return task


# ---- unit: the task's data and scoring, no sandbox ----------------------------------------------


def test_the_thirty_algorithms_are_dm_clrs_own():
    assert sorted(CLRS30_ALGORITHMS) == sorted(clrs.CLRS_30_ALGS_SETTINGS)
    names = [n for n in configured_tasks("") if n.startswith("clrs/")]
    assert len(names) == 30 and "clrs/bfs" in names
    # run.py's sizes: 64 samples, more for the algorithms with few output signals
    assert default_eval_samples("bfs") == 64 and default_eval_samples("minimum") == 4096
    assert default_eval_samples("find_maximum_subarray_kadane") == 2048
    assert len(SEEDS) == 9


def test_the_sandbox_gets_no_outputs_and_no_hint_past_the_first_step(tmp_path):
    task = small_task("insertion_sort")
    task.write_job(tmp_path, tmp_path / "data", "haiku", STANDARD, 10, 0, threads=1)
    spec = json.loads((tmp_path / "spec.json").read_text())
    with np.load(tmp_path / "data" / spec["data"]) as data:
        names = set(data.files)
        outputs = {o.name for o in task.data.splits["val"].outputs}
        assert outputs == {"pred", "pred_mask"}
        for name in names:
            split, kind, *probe = name.split("/")
            assert split in ("val", "test") and kind in ("inputs", "hints", "lengths"), name
            if kind == "hints":
                assert not np.any(data[name][1:]), f"{name} holds hints past the first step"
        assert not any(n.split("/")[-1] in outputs for n in names if "/inputs/" in n)
        assert data["test/lengths"].shape == (EVAL_SAMPLES,)
        assert data["test/inputs/key"].shape == (EVAL_SAMPLES, TEST_LENGTH)  # the test graphs are larger
        assert data["val/inputs/key"].shape == (EVAL_SAMPLES, 16)
    assert spec["clrs"]["algorithm"] == "insertion_sort" and spec["clrs"]["train_lengths"] == [4, 7, 11, 13, 16]
    assert spec["steps"] == 10 and spec["lr"] == 1e-3 and spec["batch_size"] == 32


def write_predictions(out: Path, task: ClrsTask, steps: list[int], perfect_at: int | None) -> None:
    """Validation predictions of every checkpoint, and test predictions at the best: perfect at
    `perfect_at` (also the test's step then), all zeros elsewhere."""
    arrays = {"steps": np.asarray(steps, dtype=np.int64)}
    test_step = perfect_at or steps[0]
    test = {"step": np.asarray(test_step, dtype=np.int64)}
    for split, held in task.data.splits.items():
        for truth in held.outputs:
            right = np.asarray(truth.data, dtype=np.float32)
            if split == "val":
                arrays[f"val/{truth.name}"] = np.stack([right if s == perfect_at else np.zeros_like(right)
                                                        for s in steps])
            else:
                test[f"test/{truth.name}"] = right if perfect_at else np.zeros_like(right)
    np.savez(out / "predictions.npz", **arrays)
    np.savez(out / "test_predictions.npz", **test)


def test_the_server_scores_with_dm_clrs_evaluate_at_the_best_validation_checkpoint(tmp_path):
    task = small_task("bfs")
    steps = task.recipe.checkpoints(10)
    write_predictions(tmp_path, task, steps, perfect_at=steps[3])
    score = task.score(tmp_path, 1 << 20, steps)
    assert score.best_step == steps[3] and score.val_accuracy == 1.0 and score.test_accuracy == 1.0
    assert all(v < 1.0 for s, v, _ in score.checkpoints if s != steps[3])


@pytest.mark.parametrize("damage", ["missing", "shape", "nan", "steps"])
def test_malformed_predictions_are_refused(tmp_path, damage):
    task = small_task("bfs")
    steps = task.recipe.checkpoints(10)
    write_predictions(tmp_path, task, steps, perfect_at=None)
    with np.load(tmp_path / "predictions.npz") as f:
        arrays = dict(f)
    if damage == "missing":
        del arrays["val/pi"]
    elif damage == "shape":
        arrays["val/pi"] = arrays["val/pi"][:, :1]
    elif damage == "nan":
        arrays["val/pi"][0, 0, 0] = np.nan
    else:
        arrays["steps"] = arrays["steps"] + 1
    np.savez(tmp_path / "predictions.npz", **arrays)
    with pytest.raises(BadOutput):
        task.score(tmp_path, 1 << 20, steps)


def test_mutation_children_of_the_seeds_are_triplet_functions_that_run():
    import haiku as hk
    import jax
    import jax.numpy as jnp

    from evoprompt.search.operators.mutation import MutationLM
    from evoprompt.search.prompt import Example, build_prompt

    parents = [SEEDS["standard"], SEEDS["bilinear"], SEEDS["mlp_nodes"]]
    prompt = build_prompt([Example(code, 1000 * (i + 1), 0.5) for i, code in enumerate(parents)], "clrs/bfs")
    children = [c for seed in (3, 4) for c in asyncio.run(MutationLM("mutation").generate(prompt, 12, 1.0, seed))]
    assert len(children) == 24
    b, n, h = 2, 5, 6
    z, edges, graph = jnp.ones((b, n, 2 * h)), jnp.ones((b, n, n, h)), jnp.ones((b, h))
    for code in children:
        namespace: dict = {}
        exec(compile(code, "child.py", "exec"), namespace)  # noqa: S102 - our own mutation's output
        fn = hk.transform(lambda ns=namespace: ns["get_triplet_msgs"](z, edges, graph, 8))
        out = fn.apply(fn.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(0))
        assert out.shape[:4] == (b, n, n, n), code


# ---- integration: a real server with clrs-cpu containers ----------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[EvaluatorServer]:
    require_sandbox_images()
    srv = start_server(tmp_path_factory.mktemp("clrs-home"), "docker", clrs_eval_samples=EVAL_SAMPLES,
                       clrs_test_length=SMOKE_TEST_LENGTH, timeout=900.0)
    yield srv
    srv.stop()


def evaluate_all(server: EvaluatorServer, requests: list[EvaluationRequest]) -> list:
    """Results in the order of `requests` (the stream answers in completion order)."""
    requests = [replace(r, request_id=r.request_id or uuid.uuid4().hex) for r in requests]
    with EvaluatorClient(server.endpoint) as client:
        by_id = {r.request_id: r for r in client.evaluate_many(requests)}
    return [by_id[r.request_id] for r in requests]


def table(title: str, rows: list[tuple]) -> None:
    print(f"\n{title}\n{'name':32s} {'status':14s} {'val':>6s} {'test':>6s} {'params':>9s} {'wall s':>7s}")
    for row in rows:
        print("{:32s} {:14s} {:6.3f} {:6.3f} {:9,d} {:7.1f}".format(*row))


# The server tests' evaluations go to the server in one batch (those of the selected tests): each one is
# mostly XLA compiling the model on one core, so a test's last evaluation or a test's only one would
# otherwise leave the second slot idle for tens of seconds. Each test then checks its own results.
# Compiling dm-clrs' model dominates (15-78 s per evaluation on a CPU): the batch holds the whole
# module's server time, so its tests get a long timeout (whichever runs first waits for the batch).
BATCH_TIMEOUT = 3600


@pytest.fixture(scope="module")
def results(server, request) -> dict[str, dict[str, EvaluationResult]]:
    """{test name: {label: EvaluationResult}} for the selected tests of this module that use it."""
    selected = {item.originalname for item in request.session.items if item.module is request.module}
    plan = {test: requests for test, requests in planned_requests(server).items() if test in selected}
    labelled = [(test, label, r) for test, requests in plan.items() for label, r in requests.items()]
    started = time.monotonic()
    answers = evaluate_all(server, [r for _, _, r in labelled])  # identical work in one batch runs once
    results: dict[str, dict[str, EvaluationResult]] = {test: {} for test in plan}
    for (test, label, _), answer in zip(labelled, answers, strict=True):
        results[test][label] = answer
    print(f"\n{len(answers)} CLRS evaluations of {len(plan)} tests in one batch: {time.monotonic() - started:.0f} s "
          f"on {server.slots} slots")
    return results


@pytest.mark.integration
@pytest.mark.timeout(BATCH_TIMEOUT)
def test_every_seed_trains_on_bfs(results):
    by_name = results["test_every_seed_trains_on_bfs"]
    assert sorted(by_name) == sorted(SEEDS)
    table("seeds on clrs/bfs, 1 step", [(n, r.status.name, r.val_accuracy, r.test_accuracy, r.num_params,
                                          r.wall_seconds) for n, r in by_name.items()])
    bad = {n: r.message for n, r in by_name.items() if r.status is not Status.OK}
    assert not bad
    for r in by_name.values():
        assert 0.0 <= r.val_accuracy <= 1.0 and 0.0 <= r.test_accuracy <= 1.0 and r.best_step == 1
    # the seeds really differ: an MLP output layer adds parameters, no graph term removes some
    assert by_name["mlp_output"].num_params > by_name["standard"].num_params
    assert by_name["mlp_nodes_no_graph"].num_params < by_name["mlp_nodes"].num_params


# Every output probe of CLRS-30 (node pointers, masks, one-hot masks, permutations; edge categories,
# pointers and masks; graph masks) and every sampler family (graphs, arrays, sorts, strings, geometry,
# dynamic programming); compiling dm-clrs' model dominates each evaluation (15-78 s on a CPU), so CI runs
# these eight (bfs costs nothing: the seeds' test evaluates it) and EVOPROMPT_CLRS_ALL=1 all thirty.
REPRESENTATIVE = ("bfs", "binary_search", "graham_scan", "insertion_sort", "lcs_length", "matrix_chain_order",
                  "mst_kruskal", "segments_intersect")


def output_probes(algorithm: str) -> set[tuple[str, str]]:
    """The (location, type) of each output of `algorithm` in dm-clrs' specs."""
    from clrs._src import specs

    return {(location, kind) for stage, location, kind in specs.SPECS[algorithm].values() if stage == "output"}


def test_the_representative_algorithms_cover_every_output_probe_of_clrs30():
    assert set(REPRESENTATIVE) <= set(CLRS30_ALGORITHMS)
    covered = set().union(*(output_probes(a) for a in REPRESENTATIVE))
    assert covered == set().union(*(output_probes(a) for a in CLRS30_ALGORITHMS))


def trained_algorithms() -> tuple[str, ...]:
    return tuple(CLRS30_ALGORITHMS) if os.environ.get("EVOPROMPT_CLRS_ALL") == "1" else REPRESENTATIVE


@pytest.mark.integration
@pytest.mark.timeout(BATCH_TIMEOUT)
def test_every_algorithm_trains_the_standard_seed(results):
    algorithms = trained_algorithms()
    by_algorithm = results["test_every_algorithm_trains_the_standard_seed"]
    assert sorted(by_algorithm) == sorted(algorithms)
    table(f"standard seed, 1 step, {len(algorithms)} algorithms",
          [(a, r.status.name, r.val_accuracy, r.test_accuracy, r.num_params, r.wall_seconds)
           for a, r in by_algorithm.items()])
    bad = {a: f"{r.status.name}: {r.message}" for a, r in by_algorithm.items() if r.status is not Status.OK}
    assert not bad


WRONG_SHAPE = '''
import haiku as hk


def get_triplet_msgs(z, edge_fts, graph_fts, nb_triplet_fts):
    return hk.Linear(nb_triplet_fts)(edge_fts)  # (B, N, N, F): one node axis short
'''
NAN = STANDARD.replace("    return (\n", "    return jnp.nan * (\n", 1)
NOT_DEFINED = "import haiku as hk\n\n\ndef triplets(z, edge_fts, graph_fts, nb_triplet_fts):\n    return z\n"


BROKEN = {  # name: (code, status, message)
    "wrong-shape": (WRONG_SHAPE, Status.INVALID_OUTPUT, "get_triplet_msgs must return triplet messages of shape "
                                                        "(batch, nodes, nodes, nodes, features)"),
    "nan": (NAN, Status.RUNTIME_ERROR, "the training loss became nan at step 1"),
    "not-defined": (NOT_DEFINED, Status.COMPILE_ERROR, "the program defines no top-level function `get_triplet_msgs`"),
}


@pytest.mark.integration
@pytest.mark.timeout(BATCH_TIMEOUT)
@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_triplet_functions_get_a_clear_status(results, name):
    assert "jnp.nan * (" in NAN
    _, status, message = BROKEN[name]
    result = results["test_broken_triplet_functions_get_a_clear_status"][name]
    assert result.status is status, result.message
    assert message in result.message


# The candidate searches every file the sandbox can read (but the image's own packages, made before
# any job existed) for the bytes of the held-out outputs, in the dtypes they could be stored in.
SEARCH = '''
import os

import numpy as np

PATTERNS = {patterns!r}


def search(top, skip=("/proc", "/sys", "/dev", "/opt/venv", "/usr")):
    found = []
    for root, dirs, files in os.walk(top, onerror=lambda e: None):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
        for name in files:
            path = os.path.join(root, name)
            try:
                if not os.path.isfile(path) or os.path.getsize(path) > 64 << 20:
                    continue
                with open(path, "rb") as f:
                    blob = f.read()
            except OSError:
                continue
            found += [f"{{path}}: {{label}}" for label, pattern in PATTERNS.items() if bytes.fromhex(pattern) in blob]
    return found
'''
# the data reaches the sandbox once the candidate is built, so the search runs in the first call of
# get_triplet_msgs (during training), with the data linked into /job/input
SEARCH_CANDIDATE = SEARCH + '''
import json

_searched = []


def search_once():
    if _searched:
        return
    _searched.append(True)
    found = search("/")
    with np.load("/job/input/" + json.load(open("/job/input/spec.json"))["data"]) as data:
        found += [name for name in data.files if not name.split("/")[1] in ("inputs", "hints", "lengths")]
        found += [name for name in data.files if "/hints/" in name and np.any(data[name][1:])]
    if found:
        raise RuntimeError(f"held-out outputs are readable: {{found[:10]}}")
'''
SEARCH_AFTER_DATA = '''

_standard_triplets = get_triplet_msgs


def get_triplet_msgs(z, edge_fts, graph_fts, nb_triplet_fts):
    search_once()
    return _standard_triplets(z, edge_fts, graph_fts, nb_triplet_fts)
'''


def output_patterns(task: ClrsTask) -> dict[str, str]:
    patterns = {}
    for split, held in task.data.splits.items():
        for truth in held.outputs:
            for dtype in (np.float32, np.float64, np.int32, np.int64):
                patterns[f"{split}/{truth.name} as {np.dtype(dtype).name}"] = \
                    np.ascontiguousarray(np.asarray(truth.data).astype(dtype)).tobytes().hex()
    return patterns


def held_out_search_candidate(server: EvaluatorServer) -> str:
    """The standard seed, after a search of the sandbox for the server's held-out outputs."""
    task = server.tasks["clrs/bfs"]
    assert isinstance(task, ClrsTask)
    return SEARCH_CANDIDATE.format(patterns=output_patterns(task)) + "\n\n" + STANDARD + SEARCH_AFTER_DATA


@pytest.mark.integration
@pytest.mark.timeout(BATCH_TIMEOUT)
def test_held_out_outputs_are_absent_from_the_sandbox(server, results, tmp_path):
    task = server.tasks["clrs/bfs"]
    assert isinstance(task, ClrsTask)
    patterns = output_patterns(task)
    # the search finds them where they are: written as the server holds them
    namespace: dict = {}
    exec(SEARCH.format(patterns=patterns), namespace)  # noqa: S102 - the test's own code
    planted = tmp_path / "planted"
    planted.mkdir()
    held = task.data.splits["test"]
    np.savez(planted / "leak.npz", **{t.name: t.data for t in held.outputs})
    assert any("test/pi" in hit for hit in namespace["search"](str(planted)))

    result = results["test_held_out_outputs_are_absent_from_the_sandbox"]["search"]
    assert result.code_sha256 == hashlib.sha256(held_out_search_candidate(server).encode()).hexdigest()
    assert result.status is Status.OK, result.message


def planned_requests(server: EvaluatorServer) -> dict[str, dict[str, EvaluationRequest]]:
    """{test name: {label: request}}: the evaluations each server test checks, in the order the batch sends
    them (the algorithms, whose compile times vary most, first; the failures that end at once last)."""
    def one_step(task: str, code: str) -> EvaluationRequest:
        return EvaluationRequest(task, "haiku", code, max_steps=1, seed=0)

    return {
        "test_every_algorithm_trains_the_standard_seed": {a: one_step(f"clrs/{a}", STANDARD)
                                                          for a in trained_algorithms()},
        "test_every_seed_trains_on_bfs": {n: one_step("clrs/bfs", SEEDS[n]) for n in sorted(SEEDS)},
        "test_held_out_outputs_are_absent_from_the_sandbox": {"search": one_step("clrs/bfs",
                                                                                 held_out_search_candidate(server))},
        "test_broken_triplet_functions_get_a_clear_status": {n: one_step("clrs/bfs", code)
                                                             for n, (code, _, _) in BROKEN.items()},
    }


@pytest.mark.integration
@pytest.mark.timeout(1800)
def test_search_client_runs_a_clrs_search(server, tmp_path):
    run_dir = tmp_path / "run"
    args = ["search", "--task", "clrs/bfs", "--framework", "haiku", "--lm", "mutation", "--run-dir", str(run_dir),
            "--rounds", "1", "--prompts", "2", "--samples", "1", "--parents", "3", "--max-steps", "1",
            "--seed", "0", "--evaluator", server.endpoint, "--no-progress"]
    proc = subprocess.run([sys.executable, "-m", "evoprompt.sdk.cli", *args], capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = subprocess.run([sys.executable, "-m", "evoprompt.sdk.cli", "report", str(run_dir), "--json"],
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    summary = json.loads(report.stdout)
    print(f"\nclrs/bfs mutation search, 1 round: {summary['candidates']} children, {summary['evaluated']} "
          f"evaluated, best {summary['best']}")
    assert summary["rounds"] == 1 and summary["candidates"] == 2 and summary["evaluated"] >= 1  # 2 prompts x 1
    assert summary["best"]["val_accuracy"] > 0
    assert (run_dir / "report" / "report.html").is_file()
