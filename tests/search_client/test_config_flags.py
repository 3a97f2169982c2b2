"""`search` and `demo` flags come from SearchConfig's fields: one default, one help text, per setting."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from evoprompt.search.config import SearchConfig, add_config_flags, config_from_args, flag_fields
from evoprompt.search.demo import DEMO_BUDGET, add_arguments


def test_every_flag_field_is_a_search_flag_with_its_default():
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    args = parser.parse_args([])
    names = {f.name for f in flag_fields()}
    assert names == {f.name for f in fields(SearchConfig)} - {"task", "framework", "lm", "temperatures", "run_id"}
    config = config_from_args(args, task="mnist1d", framework="torch", lm="mutation")
    default = SearchConfig(task="mnist1d", framework="torch", lm="mutation")
    assert all(getattr(config, n) == getattr(default, n) for n in names)


def test_flags_parse_typed_values_and_refuse_bad_choices(capsys):
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    args = parser.parse_args(["--rounds", "3", "--alpha", "0.25", "--prompt-style", "chat", "--lm-timeout", "5",
                              "--seed-programs", "mlp, cnn,mlp"])
    config = config_from_args(args, task="mnist1d", framework="torch", lm="mutation")
    assert (config.rounds, config.alpha, config.prompt_style, config.lm_timeout) == (3, 0.25, "chat", 5.0)
    assert config.seed_programs == ("cnn", "mlp")
    for argv, refusal in ((["--seed-programs", " , "], "expected names of seed programs"),
                          (["--mode", "greedy"], "invalid choice")):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert refusal in capsys.readouterr().err


def test_the_demo_takes_its_budget_from_the_same_fields():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert {k: getattr(args, k) for k in DEMO_BUDGET} == DEMO_BUDGET
    config = config_from_args(args, task="mnist1d", framework="torch", lm="mutation")
    assert (config.rounds, config.max_steps) == (DEMO_BUDGET["rounds"], DEMO_BUDGET["max_steps"])


def test_seed_programs_given_in_code_take_the_flags_spelling(tmp_path):
    """A config built in code (a list, a repeat, any order) saves, loads and compares as the flag's."""
    config = SearchConfig(task="mnist1d", framework="torch", lm="mutation", seed_programs=["mlp", "cnn", "mlp"])
    assert config.seed_programs == ("cnn", "mlp")
    config.save(tmp_path)
    assert SearchConfig.load(tmp_path) == config
