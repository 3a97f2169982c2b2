"""CLRS-30 algorithmic reasoning (Velickovic et al. 2022): one task `clrs/<algorithm>` per algorithm.

The candidate is a `get_triplet_msgs` for dm-clrs' Triplet-GMPNN (Ibarz et al. 2022); the harness
trains that baseline with it swapped in (sandbox_images/harness/evoprompt_harness/train_clrs.py).
Samplers and settings follow dm-clrs' `examples/run.py`: training graphs of 4 to 16 nodes sampled
in the sandbox, validation at 16 nodes and the out-of-distribution test at 64, both sampled here and
sent without their outputs. The server scores the predicted output probes with dm-clrs' `evaluate`.

dm-clrs (and through it tensorflow) is imported only when a CLRS task is used; a server without it
does not offer these tasks.
"""

from __future__ import annotations

import importlib.util
import inspect
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..outputs import read_test, read_validation
from ..scoring import Validation, validation_of
from .base import Recipe, Task

# dm-clrs' specs.CLRS_30_ALGS (a test checks they agree), listed here so that listing tasks needs no
# tensorflow import
CLRS30_ALGORITHMS = (
    "activity_selector", "articulation_points", "bellman_ford", "bfs", "binary_search", "bridges",
    "bubble_sort", "dag_shortest_paths", "dfs", "dijkstra", "find_maximum_subarray_kadane",
    "floyd_warshall", "graham_scan", "heapsort", "insertion_sort", "jarvis_march", "kmp_matcher",
    "lcs_length", "matrix_chain_order", "minimum", "mst_kruskal", "mst_prim", "naive_string_matcher",
    "optimal_bst", "quickselect", "quicksort", "segments_intersect", "strongly_connected_components",
    "task_scheduling", "topological_sort",
)
# run.py's PRED_AS_INPUT_ALGOS: a fixed `pred_h` hint becomes an input (enforce_pred_as_input)
PRED_AS_INPUT = frozenset({
    "binary_search", "minimum", "find_maximum_subarray", "find_maximum_subarray_kadane", "matrix_chain_order",
    "lcs_length", "optimal_bst", "activity_selector", "task_scheduling", "naive_string_matcher", "kmp_matcher",
    "jarvis_march",
})
STRING_MATCHERS = frozenset({"naive_string_matcher", "kmp_matcher"})
SPARSE_GRAPHS = frozenset({"articulation_points", "bridges", "mst_kruskal", "bipartite_matching"})
TRAIN_LENGTHS = (4, 7, 11, 13, 16)  # run.py's train_lengths; string matchers: one length, 5/4 of the max
TEST_LENGTH = 64  # the out-of-distribution test of CLRS-30
SPLIT_SEEDS = {"val": 2, "test": 3}  # clrs.CLRS30's split seeds
HIDDEN_DIM = 128
NB_TRIPLET_FTS = 8


def clrs_available() -> bool:
    return importlib.util.find_spec("clrs") is not None


def train_lengths(algorithm: str) -> tuple[int, ...]:
    return ((max(TRAIN_LENGTHS) * 5) // 4,) if algorithm in STRING_MATCHERS else TRAIN_LENGTHS


def validation_length(algorithm: str) -> int:
    return max(train_lengths(algorithm))  # run.py validates at the longest training length


def sampler_kwargs(algorithm: str) -> dict[str, Any]:
    """run.py's kwargs for training and validation samplers (the test sampler gets none), less the
    ones the algorithm's sampler does not take (dm-clrs would drop them with a warning per sampler)."""
    import clrs

    p = [round(0.1 + 0.1 * i, 10) for i in range(9)]
    if algorithm in SPARSE_GRAPHS:
        p = [x / 2 for x in p]  # sparser graphs, or trajectories get very long
    taken = inspect.signature(clrs._src.samplers.SAMPLERS[algorithm]._sample_data).parameters
    return {k: v for k, v in {"p": p, "length_needle": -8}.items() if k in taken}


def default_eval_samples(algorithm: str) -> int:
    """run.py's validation and test sizes: 2 x CLRS-30's 32 x the algorithm's num_samples_multiplier."""
    import clrs

    return 2 * clrs.CLRS30["val"]["num_samples"] * clrs.CLRS_30_ALGS_SETTINGS[algorithm]["num_samples_multiplier"]


@dataclass(frozen=True)
class HeldOut:
    """One held-out split: what the sandbox may see, and the outputs only the server keeps."""

    inputs: dict[str, np.ndarray]
    hints: dict[str, np.ndarray]  # past the first step zeroed: later steps give the answer away
    lengths: np.ndarray
    outputs: tuple[Any, ...]  # dm-clrs DataPoints
    spec: Any


def _sample(algorithm: str, split: str, length: int, num_samples: int) -> HeldOut:
    import clrs

    seed = SPLIT_SEEDS[split]
    kwargs = sampler_kwargs(algorithm) if split == "val" else {}
    sampler, spec = clrs.build_sampler(algorithm, num_samples=num_samples, length=length, seed=seed, **kwargs)
    batch = iter([sampler.next(num_samples)])
    if split == "val":  # run.py randomises node positions of training and validation samples only
        batch = clrs.process_random_pos(batch, np.random.RandomState(seed))
    if algorithm in PRED_AS_INPUT:
        spec, batch = clrs.process_pred_as_input(spec, batch)
    spec, batch = clrs.process_permutations(spec, batch, True)
    feedback = next(batch)
    hints = {}
    for point in feedback.features.hints:
        data = np.zeros_like(np.asarray(point.data))
        data[0] = np.asarray(point.data)[0]
        hints[point.name] = data
    return HeldOut(
        inputs={p.name: np.asarray(p.data) for p in feedback.features.inputs},
        hints=hints,
        lengths=np.asarray(feedback.features.lengths),
        outputs=tuple(feedback.outputs),
        spec=spec,
    )


class ClrsData:
    """The validation and test samples of one algorithm, sampled on first use."""

    def __init__(self, algorithm: str, eval_samples: int, test_length: int) -> None:
        self.algorithm = algorithm
        self.eval_samples = eval_samples
        self.test_length = test_length
        self._lock = threading.Lock()

    @cached_property
    def splits(self) -> dict[str, HeldOut]:
        with self._lock:
            n = self.eval_samples or default_eval_samples(self.algorithm)
            return {
                "val": _sample(self.algorithm, "val", validation_length(self.algorithm), n),
                "test": _sample(self.algorithm, "test", self.test_length, n),
            }


_DATASETS: dict[tuple[str, int, int], ClrsData] = {}
_DATASETS_LOCK = threading.Lock()


def dataset(algorithm: str, eval_samples: int, test_length: int) -> ClrsData:
    """The process-wide held-out data of one algorithm and size (servers with the same share it)."""
    key = (algorithm, eval_samples, test_length)
    with _DATASETS_LOCK:
        return _DATASETS.setdefault(key, ClrsData(*key))


@dataclass(frozen=True)
class ClrsTask(Task):
    algorithm: str = "bfs"
    eval_samples: int = 0  # validation and test samples each; 0 = run.py's
    test_length: int = TEST_LENGTH

    @property
    def data_id(self) -> str:
        return f"clrs30-samplers:{self.eval_samples or 'run.py'}:{self.test_length}"

    @property
    def data(self) -> ClrsData:
        return dataset(self.algorithm, self.eval_samples, self.test_length)

    def spec(self, framework: str, steps: int, seed: int) -> dict[str, Any]:
        splits = self.data.splits
        spec = super().spec(framework, steps, seed)
        spec["clrs"] = {
            "algorithm": self.algorithm,
            "train_lengths": list(train_lengths(self.algorithm)),
            "sampler_kwargs": sampler_kwargs(self.algorithm),
            "pred_as_input": self.algorithm in PRED_AS_INPUT,
            "hidden_dim": HIDDEN_DIM,
            "nb_triplet_fts": NB_TRIPLET_FTS,
            "inputs": list(splits["val"].inputs),
            "hints": list(splits["val"].hints),
        }
        return spec

    def write_data(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        for split, held in self.data.splits.items():
            arrays.update({f"{split}/inputs/{k}": v for k, v in held.inputs.items()})
            arrays.update({f"{split}/hints/{k}": v for k, v in held.hints.items()})
            arrays[f"{split}/lengths"] = held.lengths
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    def _expected(self, split: str) -> dict[str, tuple[int, ...]]:
        return {f"{split}/{truth.name}": np.shape(truth.data) for truth in self.data.splits[split].outputs}

    def _accuracy(self, split: str, predicted: dict[str, np.ndarray]) -> float:
        """dm-clrs' own score of one split's predicted output probes."""
        import clrs

        held = self.data.splits[split]
        points = {}
        for truth in held.outputs:
            points[truth.name] = clrs.DataPoint(name=truth.name, location=held.spec[truth.name][1],
                                                type_=held.spec[truth.name][2], data=predicted[f"{split}/{truth.name}"])
        return float(clrs.evaluate(held.outputs, points)["score"])

    def score_validation(self, output_dir: Path, limit: int, checkpoints: list[int]) -> Validation:
        steps, arrays = read_validation(output_dir, limit, checkpoints, self._expected("val"), classes=False)
        val = [self._accuracy("val", {name: a[i] for name, a in arrays.items()}) for i in range(len(steps))]
        return validation_of(steps, np.asarray(val))

    def score_test(self, output_dir: Path, limit: int, step: int) -> float:
        return self._accuracy("test", read_test(output_dir, limit, step, self._expected("test"), classes=False))


def clrs_tasks(eval_samples: int = 0, test_length: int = TEST_LENGTH) -> dict[str, Task]:
    """The 30 tasks, or none where dm-clrs is not installed. Smaller `eval_samples` and `test_length`
    than CLRS-30's are for smoke tests on a CPU: a 64-node test sample of bubble sort is ~2,000
    message-passing steps over 64^3 triplets, minutes on one core."""
    if not clrs_available():
        return {}
    recipe = Recipe(default_steps=2000, max_steps=2000, lr=1e-3, weight_decay=1e-4, batch_size=32,
                    num_checkpoints=10)
    return {
        f"clrs/{a}": ClrsTask(
            name=f"clrs/{a}",
            description=f"CLRS-30 {a}: dm-clrs' Triplet-GMPNN with the candidate's get_triplet_msgs; "
                        f"trained at up to {validation_length(a)} nodes, validated at {validation_length(a)}, "
                        f"tested (out of distribution) at {test_length}",
            frameworks=("haiku",),
            recipe=recipe,
            algorithm=a,
            eval_samples=eval_samples,
            test_length=test_length,
        )
        for a in CLRS30_ALGORITHMS
    }
