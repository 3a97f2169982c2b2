"""`evoprompt serve`'s flags come from the settings' fields; settings, image and search errors are
`UserError`s, which the `evoprompt` command turns into one line and exit 2 (a bug keeps its traceback)."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

from evoprompt.evaluator import image_builder, images
from evoprompt.evaluator.cli import serve_cmd
from evoprompt.evaluator.settings import (
    EvaluatorSettings,
    SettingsError,
    describe_default,
    flag_fields,
    flag_name,
    load_settings,
    settings_overrides,
)
from evoprompt.sdk.cli import main as cli
from evoprompt.sdk.cli.expectations import SampleError
from evoprompt.sdk.errors import EvaluatorError, EvaluatorUnavailableError, InvalidTargetError, UserError
from evoprompt.search.config import SearchConfigError
from evoprompt.search.lm.base import LMConfigError
from evoprompt.search.loop import NoParentsError
from evoprompt.search.runner import RunDirError

NOT_FLAGS = {"data_secret", "node_name"}  # a secret, and a per-node value the Ray agent reads
# every flag `evoprompt serve` had before its flags came from the settings: each still works
OLD_FLAGS = {"--host": "host", "--port": "port", "--backend": "backend", "--slots": "slots",
             "--timeout": "timeout", "--queue": "queue_capacity", "--gpus": "gpus",
             "--slots-per-gpu": "slots_per_gpu", "--memory-gb": "memory_gb", "--cpus": "cpus",
             "--pool-size": "pool_size", "--frameworks": "frameworks", "--executor": "executor",
             "--ray-address": "ray_address", "--ray-in-flight": "ray_in_flight", "--ray-gpu-share": "ray_gpu_share",
             "--runtime": "runtime", "--metrics-port": "metrics_port", "--token": "token", "--tls-cert": "tls_cert",
             "--tls-key": "tls_key", "--public-data": "public_data", "--home": "home", "--config": "config"}


@pytest.fixture(autouse=True)
def no_evoprompt_environment(monkeypatch):
    import os

    for name in [n for n in os.environ if n.startswith("EVOPROMPT_")]:
        monkeypatch.delenv(name)


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    serve_cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser


def serve_subparser() -> argparse.ArgumentParser:
    sub = next(a for a in serve_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["serve"]


def serve_action(option: str) -> argparse.Action:
    return serve_subparser()._option_string_actions[option]


def parse(*argv: str) -> argparse.Namespace:
    return serve_parser().parse_args(["serve", *argv])


def test_every_setting_but_the_excluded_ones_is_a_flag():
    dests = {a.dest for a in serve_subparser()._actions} - {"help", "config"}
    names = {f.name for f in fields(EvaluatorSettings)}
    assert dests == names - NOT_FLAGS
    assert all(f.metadata["help"] for f in fields(EvaluatorSettings))  # every field says what it is


@pytest.mark.parametrize("flag, dest", sorted(OLD_FLAGS.items()))
def test_every_old_flag_still_works(flag, dest):
    assert serve_action(flag).dest == dest


def test_flags_left_out_override_nothing():
    args = parse()
    assert settings_overrides(args) == {}
    assert all(getattr(args, f.name) is None for f in fields(EvaluatorSettings) if f.name not in NOT_FLAGS)


def test_flag_types_come_from_the_defaults(tmp_path):
    args = parse("--port", "7", "--timeout", "1.5", "--gpus", "0, 1", "--home", str(tmp_path), "--public-data",
                 "--no-build-images", "--queue", "3", "--sandbox-base", "python:3.11-slim")
    assert settings_overrides(args) == {"port": 7, "timeout": 1.5, "gpus": ("0", "1"), "home": tmp_path,
                                        "public_data": True, "build_images": False, "queue_capacity": 3,
                                        "sandbox_base": "python:3.11-slim"}
    s = load_settings(None, settings_overrides(args))
    assert (s.port, s.gpus, s.home, s.public_data, s.build_images, s.queue_capacity) == (
        7, ("0", "1"), tmp_path.resolve(), True, False, 3)


@pytest.mark.parametrize("argv", [["--backend", "podman"], ["--executor", "k8s"], ["--slots", "two"]])
def test_bad_flag_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(*argv)
    assert exit_.value.code == 2 and "invalid" in capsys.readouterr().err


def test_a_flag_beats_the_environment_which_beats_the_file(tmp_path, monkeypatch):
    config = tmp_path / "evaluator.toml"
    config.write_text('[evaluator]\nslots = 2\nport = 1000\nruntime = "runsc"\ndebian_mirror = "http://file"\n')
    assert load_settings(config).slots == 2
    monkeypatch.setenv("EVOPROMPT_SLOTS", "3")
    monkeypatch.setenv("EVOPROMPT_PORT", "2000")
    monkeypatch.setenv("EVOPROMPT_DEBIAN_MIRROR", "http://env")
    s = load_settings(config, settings_overrides(parse("--slots", "4")))
    assert (s.slots, s.port, s.runtime, s.debian_mirror) == (4, 2000, "runsc", "http://env")


def test_help_shows_each_default():
    help_text = " ".join(serve_subparser().format_help().split())
    for expected in ("--queue QUEUE_CAPACITY", "(default: 64)", "(default: 127.0.0.1)", "(default: 50051)",
                     "(default: docker)", "(default: 900)", "(default: none: CPU slots)", "(default: off:",
                     "(default: on)", "(default: http://deb.debian.org/debian)", "--no-build-images"):
        assert expected in help_text, expected
    for f in flag_fields():
        assert f"(default: {describe_default(f)})" in serve_action(flag_name(f)).help, f.name
    assert "--data-secret" not in help_text and "--node-name" not in help_text


def test_the_image_settings_and_the_node_name_are_read_through_the_settings(monkeypatch):
    s = load_settings()
    assert (s.sandbox_base, s.build_dir, s.node_name) == ("", "", "")
    assert s.debian_mirror == images.DEFAULT_DEBIAN_MIRROR
    monkeypatch.setenv("EVOPROMPT_SANDBOX_BASE", "python:3.11-slim")
    monkeypatch.setenv("EVOPROMPT_BUILD_DIR", "/tmp/builds")
    monkeypatch.setenv("EVOPROMPT_NODE_NAME", "gpu-7")
    s = load_settings()
    assert (s.sandbox_base, s.build_dir, s.node_name) == ("python:3.11-slim", "/tmp/builds", "gpu-7")


def test_the_image_functions_take_the_settings_and_read_no_environment(tmp_path, monkeypatch):
    local = images.local_base_tag()
    assert images.base_image_tag("torch-cpu", tmp_path) == local
    assert images.base_image_tag("torch-cpu", tmp_path, sandbox_base="python:3.11-slim") == "python:3.11-slim"
    monkeypatch.setenv("EVOPROMPT_SANDBOX_BASE", "debian-python:env")
    assert images.base_image_tag("torch-cpu", tmp_path) == local  # passed nothing: the default, never the environment
    assert images.base_image_tag("torch-cpu", tmp_path, sandbox_base="") == local  # passed: the setting alone
    assert image_builder.build_folder(str(tmp_path / "b")) == (tmp_path / "b").resolve()
    monkeypatch.setenv("EVOPROMPT_BUILD_DIR", str(tmp_path / "env"))
    assert image_builder.build_folder() != (tmp_path / "env").resolve()
    assert image_builder.build_folder("") != (tmp_path / "env").resolve()


def test_bad_settings_are_user_errors_and_value_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("EVOPROMPT_SLOTS", "many")
    with pytest.raises(SettingsError, match="'slots'"):
        load_settings()
    monkeypatch.delenv("EVOPROMPT_SLOTS")
    with pytest.raises(ValueError, match="at least 1"):
        load_settings(None, {"slots": 0})
    with pytest.raises(SettingsError, match="cannot read --config"):
        load_settings(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[evaluator\n")
    with pytest.raises(SettingsError, match="not TOML"):
        load_settings(tmp_path / "bad.toml")
    (tmp_path / "unknown.toml").write_text("[evaluator]\nslotz = 1\n")
    with pytest.raises(SettingsError, match="slotz"):
        load_settings(tmp_path / "unknown.toml")


@pytest.mark.parametrize("error", [SettingsError, images.ImageBuildError, EvaluatorError, EvaluatorUnavailableError,
                                   InvalidTargetError, SampleError, RunDirError, LMConfigError, SearchConfigError,
                                   NoParentsError])
def test_users_errors_are_user_errors(error):
    assert issubclass(error, UserError)


def _command(raises: BaseException):
    def add_parser(sub):
        p = sub.add_parser("boom")

        def run(args):
            raise raises

        p.set_defaults(run=run)

    return {"boom": add_parser}


def test_main_says_a_user_error_in_one_line_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(cli, "installed_commands", lambda: _command(SettingsError("slots must be at least 1")))
    assert cli.main(["boom"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "evoprompt boom: slots must be at least 1\n"


def test_main_lets_a_bug_through_with_its_traceback(monkeypatch):
    monkeypatch.setattr(cli, "installed_commands", lambda: _command(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["boom"])


def test_serve_refuses_bad_settings_through_main(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli, "installed_commands", lambda: {"serve": serve_cmd.add_parser})
    assert cli.main(["serve", "--slots", "0", "--home", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "evoprompt serve: slots, slots_per_gpu and queue_capacity must be at least 1\n"
    assert cli.main(["serve", "--config", str(tmp_path / "none.toml")]) == 2
    assert "cannot read --config" in capsys.readouterr().err


def test_the_settings_module_reads_every_evoprompt_variable():
    # the image settings moved into the settings object: no module but settings.py reads EVOPROMPT_*
    root = Path(images.__file__).parent
    for module in ("images.py", "image_builder.py"):
        assert "EVOPROMPT_" not in "".join(
            line for line in (root / module).read_text().splitlines(keepends=True)
            if "environ" in line), module
