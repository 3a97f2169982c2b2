"""Reading back sandbox output trusts nothing: links, bombs, wrong shapes and dtypes are refused."""

import io
import os
import zipfile

import numpy as np
import pytest

from evoprompt.evaluator.outputs import BadOutput, count_weights, read_result_record, read_test, read_validation

LIMIT = 1024 * 1024
STEPS = [50, 100]


def write_predictions(d, **overrides):
    arrays = {"steps": np.array(STEPS), "val": np.zeros((2, 5), np.int64)}
    arrays.update(overrides)
    np.savez(d / "predictions.npz", **arrays)


def read_predictions(d, limit, steps, n_val):
    return read_validation(d, limit, steps, {"val": (n_val,)}, classes=True)


def test_good_outputs(tmp_path):
    write_predictions(tmp_path)
    steps, pred = read_predictions(tmp_path, LIMIT, STEPS, 5)
    assert steps.tolist() == STEPS and pred["val"].shape == (2, 5)
    np.savez(tmp_path / "test_predictions.npz", step=np.array(100), test=np.ones(7, np.int64))
    assert read_test(tmp_path, LIMIT, 100, {"test": (7,)}, classes=True)["test"].shape == (7,)
    np.savez(tmp_path / "weights.npz", **{"params/w": np.zeros((3, 4)), "state/mean": np.zeros(6)})
    counts = count_weights(tmp_path, LIMIT)
    assert (counts.num_params, counts.num_state) == (12, 6)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"val": np.zeros((2, 4), np.int64)}, r"expected \(checkpoints<=2, 5\)"),
        ({"val": np.zeros((2, 5), np.float32)}, "expected integer classes"),
        ({"steps": np.array([50, 999])}, "not checkpoints of this job"),
        ({"steps": np.array([50, 50])}, "not checkpoints of this job"),
    ],
)
def test_bad_predictions(tmp_path, overrides, message):
    write_predictions(tmp_path, **overrides)
    with pytest.raises(BadOutput, match=message):
        read_predictions(tmp_path, LIMIT, STEPS, 5)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"step": np.array(50), "test": np.ones(7, np.int64)}, "must name step 100"),
        ({"step": np.array(100), "test": np.ones(6, np.int64)}, r"expected \(7,\)"),
        ({"step": np.array(100)}, "lacks test"),
    ],
)
def test_bad_test_predictions(tmp_path, arrays, message):
    np.savez(tmp_path / "test_predictions.npz", **arrays)
    with pytest.raises(BadOutput, match=message):
        read_test(tmp_path, LIMIT, 100, {"test": (7,)}, classes=True)


def test_missing_and_linked_files_refused(tmp_path):
    with pytest.raises(BadOutput, match="wrote no predictions.npz"):
        read_predictions(tmp_path, LIMIT, STEPS, 5)
    secret = tmp_path / "secret.npz"
    write_predictions(tmp_path)
    os.rename(tmp_path / "predictions.npz", secret)
    os.symlink(secret, tmp_path / "predictions.npz")
    with pytest.raises(BadOutput, match="not a regular file"):
        read_predictions(tmp_path, LIMIT, STEPS, 5)
    os.unlink(tmp_path / "predictions.npz")
    os.link(secret, tmp_path / "predictions.npz")
    with pytest.raises(BadOutput, match="hard links"):
        read_predictions(tmp_path, LIMIT, STEPS, 5)


def test_zip_bomb_and_oversize_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("params/w.npy", b"\0" * (4 * LIMIT))
    (tmp_path / "weights.npz").write_bytes(buf.getvalue())
    with pytest.raises(BadOutput, match="inflates to") as info:
        count_weights(tmp_path, LIMIT)
    assert info.value.too_large
    (tmp_path / "weights.npz").write_bytes(b"x" * (LIMIT + 1))
    with pytest.raises(BadOutput, match="over the limit"):
        count_weights(tmp_path, LIMIT)


def test_pickled_and_foreign_entries_refused(tmp_path):
    np.savez(tmp_path / "weights.npz", **{"params/w": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(BadOutput, match="not a valid .npz"):
        count_weights(tmp_path, LIMIT)
    np.savez(tmp_path / "weights.npz", **{"other": np.zeros(3)})
    with pytest.raises(BadOutput, match="neither params"):
        count_weights(tmp_path, LIMIT)
    (tmp_path / "weights.npz").write_bytes(b"garbage")
    with pytest.raises(BadOutput, match="not a valid .npz"):
        count_weights(tmp_path, LIMIT)


def test_result_record_is_advisory(tmp_path):
    assert read_result_record(tmp_path) is None
    (tmp_path / "result.json").write_text("[1, 2]")
    assert read_result_record(tmp_path) is None
    (tmp_path / "result.json").write_text('{"ok": true}')
    assert read_result_record(tmp_path) == {"ok": True}
