"""MNIST-1D's held-out data comes from a secret seed unless a server asks for the published data.

The generator is public: with the published seed a candidate can replay it and know every label
(tests/hostile/forge_regenerate_labels.py does). These tests pin down where the secret comes from,
that it changes the data and the cache key, and that it never shows.
"""

from __future__ import annotations

import numpy as np
import pytest

from evoprompt.evaluator.server import EvaluatorServer, held_out_data_secret
from evoprompt.evaluator.settings import load_settings
from evoprompt.evaluator.tasks import configured_tasks
from evoprompt.evaluator.tasks.mnist1d import PUBLIC_SEED, dataset, seed_from_secret
from evoprompt.evaluator.validation import validate
from tests.support.fakes import FakeExecutor


def settings(tmp_path, **overrides):
    return load_settings(overrides={"home": tmp_path, "port": 0, "backend": "process", **overrides})


def test_public_task_uses_the_published_seed_and_a_secret_changes_the_data():
    public = configured_tasks("")["mnist1d"]
    secret = configured_tasks("s3cret-value")["mnist1d"]
    assert public.data_seed == PUBLIC_SEED and public.data_id == "public"
    assert secret.data_seed == seed_from_secret("s3cret-value") != PUBLIC_SEED
    assert "s3cret-value" not in secret.data_id and str(secret.data_seed) not in secret.data_id
    assert configured_tasks("s3cret-value")["mnist1d"] == secret  # deterministic
    assert configured_tasks("other")["mnist1d"].data_id != secret.data_id

    a, b = dataset(public.data_seed).arrays, dataset(secret.data_seed).arrays
    assert not np.array_equal(a["x_val"], b["x_val"]) and not np.array_equal(a["y_test"], b["y_test"])
    for arrays in (a, b):  # same shapes and the same balanced classes either way
        assert arrays["x_train"].shape == (3500, 40) and arrays["x_test"].shape == (1000, 40)
        assert np.bincount(arrays["y_train"], minlength=10).min() > 250


def test_the_data_is_part_of_the_cache_key():
    common = dict(request_id="", framework="torch", code="class Model: pass", max_steps=0, seed=0,
                  timeout_seconds=0, server_timeout=60, task="mnist1d")
    keys = {validate(**common, tasks=tasks).cache_key("img:1")
            for tasks in (configured_tasks(""), configured_tasks("a"), configured_tasks("b"))}
    assert len(keys) == 3


def test_home_secret_is_made_once_private_and_reused(tmp_path):
    s = settings(tmp_path)
    first = held_out_data_secret(s)
    assert len(first) >= 32 and (s.data_secret_path.stat().st_mode & 0o777) == 0o600
    assert held_out_data_secret(s) == first
    assert held_out_data_secret(settings(tmp_path, data_secret="fleet-wide")) == "fleet-wide"
    assert held_out_data_secret(settings(tmp_path, public_data=True)) == ""
    s.data_secret_path.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        held_out_data_secret(s)


def test_a_restarted_server_scores_on_the_same_data(tmp_path):
    ids = []
    for _ in range(2):
        server = EvaluatorServer(settings(tmp_path), executor=FakeExecutor()).start()
        ids.append(server.tasks["mnist1d"].data_id)
        server.stop()
    assert ids[0] == ids[1] != "public"
    other = EvaluatorServer(settings(tmp_path / "other"), executor=FakeExecutor()).start()
    try:
        assert other.tasks["mnist1d"].data_id != ids[0]
    finally:
        other.stop()


def test_public_data_setting_reads_booleans_and_refuses_a_secret_beside_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EVOPROMPT_PUBLIC_DATA", "true")
    assert settings(tmp_path).public_data is True
    monkeypatch.setenv("EVOPROMPT_PUBLIC_DATA", "0")
    assert settings(tmp_path).public_data is False
    monkeypatch.setenv("EVOPROMPT_PUBLIC_DATA", "maybe")
    with pytest.raises(ValueError, match="true/false"):
        settings(tmp_path)
    monkeypatch.delenv("EVOPROMPT_PUBLIC_DATA")
    with pytest.raises(ValueError, match="not both"):
        settings(tmp_path, public_data=True, data_secret="x")
