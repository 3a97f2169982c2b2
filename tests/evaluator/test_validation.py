"""Bad requests get a message that says what to change."""

import pytest

from evoprompt.evaluator.tasks import configured_tasks
from evoprompt.evaluator.validation import validate
from evoprompt.sdk.errors import InvalidRequestError
from evoprompt.sdk.limits import MAX_CODE_BYTES

GOOD = {"request_id": "", "task": "mnist1d", "framework": "torch", "code": "class Model: pass",
        "max_steps": 0, "seed": 0, "timeout_seconds": 0.0, "server_timeout": 600.0,
        "tasks": configured_tasks("")}


def check(message_part: str, **changes):
    with pytest.raises(InvalidRequestError) as info:
        validate(**{**GOOD, **changes})
    assert message_part in str(info.value)


def test_defaults_filled_in():
    req = validate(**GOOD)
    assert req.steps == 8000 and req.timeout == 600.0 and len(req.request_id) == 32
    assert validate(**{**GOOD, "timeout_seconds": 30.0, "max_steps": 100}).timeout == 30.0


def test_bad_inputs_have_actionable_messages():
    check("unknown task 'nope'; this server offers: mnist1d", task="nope")
    check("clrs/<name> with <name> one of: activity_selector, articulation_points,", task="clrs/bsf")
    check("has no framework 'tensorflow'; choose one of: flax, torch", framework="tensorflow")
    check("code is empty", code="   \n")
    check("the limit is 65,536 (64 KiB)", code="#" * (MAX_CODE_BYTES + 1))
    check("exceeds the maximum of task 'mnist1d', 8000", max_steps=8001)
    check("max_steps must be 0", max_steps=-1)
    check("timeout_seconds must be 0", timeout_seconds=-5)
    check("request_id must be", request_id="bad id with spaces")
    check("NUL byte", code="x = 1\x00")


def test_cache_key_depends_on_every_input():
    base = validate(**GOOD)
    keys = {base.cache_key("img:a")}
    keys.add(base.cache_key("img:b"))
    for change in ({"code": "class Model: x = 1"}, {"framework": "flax"}, {"max_steps": 10}, {"seed": 1}):
        keys.add(validate(**{**GOOD, **change}).cache_key("img:a"))
    assert len(keys) == 6
    assert validate(**{**GOOD, "timeout_seconds": 3}).cache_key("img:a") == base.cache_key("img:a")


def test_a_relative_home_becomes_absolute(tmp_path, monkeypatch):
    """Docker bind-mounts job folders from the home: a relative path would be taken for a volume name."""
    from evoprompt.evaluator.settings import load_settings

    monkeypatch.chdir(tmp_path)
    settings = load_settings(overrides={"home": "runs/x/evaluator"})
    assert settings.home == tmp_path / "runs" / "x" / "evaluator" and settings.work_dir.is_absolute()
