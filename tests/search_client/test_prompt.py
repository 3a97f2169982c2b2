"""The paper's prompt format and the way LM outputs become programs."""

from __future__ import annotations

import ast
from dataclasses import replace

import pytest

from evoprompt.search.prompt import (
    PROMPT_STYLES,
    Example,
    anchor_for,
    build_prompt,
    chat_messages,
    cut_at_stop,
    program_from_output,
    target_metrics,
)
from evoprompt.search.repair import BROKEN_MARKER, FIXED_MARKER, build_repair_prompt
from evoprompt.search.seeds import SEEDS_DIR, list_seeds

SEEDS = {s.name: s for s in list_seeds("mnist1d", "torch")}


def test_prompt_is_metrics_docstrings_with_code_then_targets_and_the_opening_line():
    cnn, logistic = SEEDS["cnn"], SEEDS["logistic"]
    prompt = build_prompt([Example(cnn.code, 5210, 0.918), Example(logistic.code, 410, 0.354)], "mnist1d")
    expected = (
        "\"\"\"Metrics: {'num_params': 5210, 'val_accuracy': 0.918}\"\"\"\n" + cnn.code.strip() + "\n\n\n"
        "\"\"\"Metrics: {'num_params': 410, 'val_accuracy': 0.354}\"\"\"\n" + logistic.code.strip() + "\n\n\n"
        "\"\"\"Metrics: {'num_params': 400, 'val_accuracy': 0.936}\"\"\"\n"
        "import torch\nfrom torch import nn\nclass Model(nn.Module):"
    )
    assert prompt.text == expected
    assert prompt.target_num_params == 400 and prompt.target_val_accuracy == 0.936


@pytest.mark.parametrize(
    ("examples", "size", "accuracy"),
    [
        ([(5210, 0.918), (15210, 0.65)], 4700, 0.936),  # 0.9 * 5210 = 4689 -> 4700; 1.02 * 0.918 = 0.93636
        ([(1049, 0.5)], 900, 0.51),  # 944.1 -> 900
        ([(120, 0.99)], 100, 1.0),  # at least 100 parameters; accuracy at most 100%
        ([(50_000, 0.4), (49_950, 0.2)], 45_000, 0.408),  # 44,955 -> 45,000
    ],
)
def test_targets_are_rounded_as_the_paper_says(examples, size, accuracy):
    assert target_metrics([Example("", n, a) for n, a in examples]) == (size, accuracy)


def test_a_completion_is_placed_after_the_opening_line_and_cut_where_the_class_ends():
    prompt = build_prompt([Example(SEEDS["logistic"].code, 410, 0.35)], "mnist1d")
    output = ("\n    def __init__(self):\n        super().__init__()\n        self.l = nn.Linear(40, 10)\n\n"
              "    def forward(self, x):\n        return self.l(x)\n\n\nprint('the model moves on')\n")
    program = program_from_output(prompt, output)
    assert program.startswith("import torch\nfrom torch import nn\nclass Model(nn.Module):\n    def __init__")
    assert "moves on" not in program and program.endswith("return self.l(x)\n")
    compile(program, "child.py", "exec")


def test_the_next_metrics_docstring_ends_a_completion():
    prompt = build_prompt([Example(SEEDS["logistic"].code, 410, 0.35)], "mnist1d")
    program = program_from_output(prompt, "\n    pass\n\n\"\"\"Metrics: {'num_params': 1}\"\"\"\nimport os\n")
    assert program.endswith("class Model(nn.Module):\n    pass\n")


def test_a_chat_answer_with_a_whole_program_in_a_fence_is_taken_as_it_is():
    prompt = build_prompt([Example(SEEDS["logistic"].code, 410, 0.35)], "mnist1d")
    answer = ("Here is a smaller model:\n```python\nfrom torch import nn\n\n\nclass Model(nn.Module):\n"
              "    def __init__(self):\n        super().__init__()\n        self.l = nn.Linear(40, 10)\n\n"
              "    def forward(self, x):\n        return self.l(x)\n```\nIt has 410 parameters.")
    program = program_from_output(prompt, answer)
    assert program.startswith("import torch\nfrom torch import nn\n\n\nclass Model(nn.Module):")
    assert "Here is" not in program and "```" not in program and "It has" not in program


def test_unknown_task_has_no_prompt_format():
    with pytest.raises(ValueError, match="no prompt format"):
        build_prompt([Example(SEEDS["logistic"].code, 410, 0.35)], "imagenet")


# What small code LMs (SmolLM2-135M-Instruct, Qwen2.5-Coder-0.5B-Instruct) write, and the programs taken from it.

MLP = SEEDS["mlp"].code  # """docstring""", import torch, from torch import nn, class Model (three linear layers)
SMALL_MLP = ("import torch\nfrom torch import nn\n\n\nclass Model(nn.Module):\n    def __init__(self):\n"
             "        super().__init__()\n        self.linear1 = nn.Linear(40, 32)\n"
             "        self.linear2 = nn.Linear(32, 10)\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
             "        return self.linear2(torch.relu(self.linear1(x)))\n")


def mnist1d_prompt():
    return build_prompt([Example(SEEDS["cnn"].code, 5210, 0.918), Example(MLP, 15210, 0.65)], "mnist1d")


def assert_candidate(program: str, task: str = "mnist1d") -> None:
    """What the search loop checks before evaluating: it parses and has the anchor line; and it ends in a newline."""
    ast.parse(program)
    assert anchor_for(task).search(program) and program.endswith("\n") and not program.endswith("\n\n")
    assert "```" not in program and "Metrics" not in program


def test_a_fenced_answer_loses_the_prose_around_it():
    answer = f"Sure! Here's a smaller model:\n```python\n{SMALL_MLP}```\nThis model has fewer parameters."
    program = program_from_output(mnist1d_prompt(), answer)
    assert program == SMALL_MLP
    assert_candidate(program)


def test_a_fence_left_open_runs_to_the_end_of_the_output():
    program = program_from_output(mnist1d_prompt(), f"Here is the code:\n\n```python\n{SMALL_MLP}")
    assert program == SMALL_MLP


def test_a_fence_closed_at_the_end_of_a_code_line_is_closed_there():
    program = program_from_output(mnist1d_prompt(), f"```python\n{SMALL_MLP.rstrip()}```\nDone.")
    assert program == SMALL_MLP


def test_of_several_fences_the_longest_holding_class_model_is_the_program():
    stub = "import torch\nfrom torch import nn\n\nclass Model(nn.Module):\n    pass\n"
    answer = (f"First install PyTorch:\n```bash\npip install torch\n```\nA first idea:\n```python\n{stub}```\n"
              f"Better, a smaller MLP:\n```python\n{SMALL_MLP}```\nUse it like this:\n```python\n"
              "model = Model()\nprint(model(torch.randn(8, 40)).shape)  # a much longer usage example than the rest\n"
              "print(sum(p.numel() for p in model.parameters()))\nprint(model)\nprint(model.linear1.weight.shape)\n"
              "print(model.linear2.weight.shape)\n```\n")
    assert program_from_output(mnist1d_prompt(), answer) == SMALL_MLP


def test_a_closing_fence_that_was_never_opened_ends_the_program():
    program = program_from_output(mnist1d_prompt(), f"{SMALL_MLP}```\n\nThis model uses 2 layers.")
    assert program == SMALL_MLP


def test_prose_before_unfenced_code_is_dropped():
    answer = f"Here is the improved model:\n\n{SMALL_MLP}"
    assert program_from_output(mnist1d_prompt(), answer) == SMALL_MLP
    # a constant before the imports is code, not prose
    answer = "Here is the improved model with a width constant:\nHIDDEN = 32\n" + SMALL_MLP.replace("32", "HIDDEN")
    assert program_from_output(mnist1d_prompt(), answer) == "HIDDEN = 32\n" + SMALL_MLP.replace("32", "HIDDEN")


def test_a_whole_program_with_its_module_docstring_is_taken_as_it_is():
    assert program_from_output(mnist1d_prompt(), MLP) == MLP
    assert program_from_output(mnist1d_prompt(), f"```python\n{MLP}```") == MLP


def test_a_repeated_target_metrics_docstring_at_the_start_is_dropped_not_taken_for_the_next_example():
    prompt = mnist1d_prompt()
    repeated = "\"\"\"Metrics: {'num_params': 4700, 'val_accuracy': 0.936}\"\"\"\n"
    for answer in (repeated + SMALL_MLP, "\n" + repeated + SMALL_MLP, f"```python\n{repeated}{SMALL_MLP}```\n",
                   "Here is a program with these metrics:\n" + repeated + SMALL_MLP):
        program = program_from_output(prompt, answer)
        assert program == SMALL_MLP, answer
        assert_candidate(program)


def test_the_next_example_s_metrics_docstring_after_a_whole_program_ends_it():
    answer = SMALL_MLP + "\n\n\"\"\"Metrics: {'num_params': 4200, 'val_accuracy': 0.95}\"\"\"\n" + MLP
    assert program_from_output(mnist1d_prompt(), answer) == SMALL_MLP


def test_a_program_cut_off_mid_line_keeps_its_longest_parsable_prefix():
    cnn = SEEDS["cnn"].code
    cut = cnn.index("self.conv2(h)") + len("self.co")  # generation hit max_new_tokens mid-line
    program = program_from_output(mnist1d_prompt(), "```python\n" + cnn[:cut])
    assert program == cnn[: cnn.index("        h = torch.relu(self.conv2(h))")]
    assert_candidate(program)


def test_a_continuation_cut_off_mid_statement_keeps_its_finished_lines():
    prompt = build_prompt([Example(SEEDS["logistic"].code, 410, 0.35)], "mnist1d")
    output = ("\n    def __init__(self):\n        super().__init__()\n        self.l = nn.Linear(40, 10)\n\n"
              "    def forward(self, x):\n        return self.l(torch.cat([x,")
    program = program_from_output(prompt, output)
    assert program.endswith("class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                            "        self.l = nn.Linear(40, 10)\n")
    assert_candidate(program)


def test_a_clrs_function_cut_off_inside_its_return_expression_keeps_its_definition():
    standard = (SEEDS_DIR / "clrs" / "haiku" / "standard.py").read_text()
    prompt = build_prompt([Example(standard, 500_000, 0.5)], "clrs/bfs")
    cut = standard.index("+ jnp.expand_dims(edge_2") + 10
    program = program_from_output(prompt, standard[:cut])
    assert program.endswith("    graph = hk.Linear(nb_triplet_fts)(graph_fts)\n")
    assert_candidate(program, "clrs")


def test_trimming_never_drops_the_anchor_line():
    output = "```python\nimport torch\nfrom torch import nn\n\nclass Model(nn.Module):\n    def __init__(self, wid"
    program = program_from_output(mnist1d_prompt(), output)
    assert program == output.removeprefix("```python\n") + "\n"  # nothing parses without losing it: left as is


def test_prose_after_unfenced_code_is_dropped():
    answer = (f"{SMALL_MLP}\nThis model uses two linear layers with a ReLU in between.\n"
              "It has 1,642 parameters, fewer than the examples.\n\n1. Smaller hidden layer\n")
    assert program_from_output(mnist1d_prompt(), answer) == SMALL_MLP
    answer = f"{SMALL_MLP}\n**Explanation:**\n- `linear1` maps the 40 inputs to 32 features.\n"
    assert program_from_output(mnist1d_prompt(), answer) == SMALL_MLP


def test_code_after_the_class_that_parses_is_kept():
    docstring_at_column_0 = SMALL_MLP.replace("    def __init__", '    """A small MLP.\nWidth 32.\n    """\n\n'
                                              "    def __init__")
    tail = "\n\nif __name__ == \"__main__\":\n    print(Model()(torch.zeros(1, 40)).shape)\n"
    for code in (docstring_at_column_0, SMALL_MLP + tail):
        assert program_from_output(mnist1d_prompt(), code) == code.rstrip() + "\n"


def test_a_continuation_ends_at_a_closing_fence():
    prompt = build_prompt([Example(SEEDS["logistic"].code, 410, 0.35)], "mnist1d")
    output = ("\n    def __init__(self):\n        super().__init__()\n        self.l = nn.Linear(40, 10)\n\n"
              "    def forward(self, x):\n        return self.l(x)\n    ```\n\nThis is a logistic regression.\n")
    assert program_from_output(prompt, output).endswith("        return self.l(x)\n")


def test_chat_messages_hold_the_examples_and_ask_for_the_targets():
    prompt = mnist1d_prompt()
    messages = chat_messages(prompt)
    assert [m["role"] for m in messages] == ["system", "user"]
    system, user = messages[0]["content"], messages[1]["content"]
    assert "mnist1d" in system and "```python" in system
    assert "Metrics: {'num_params': 5210, 'val_accuracy': 0.918}" in user
    assert "Metrics: {'num_params': 15210, 'val_accuracy': 0.650}" in user
    assert f"```python\n{SEEDS['cnn'].code.strip()}\n```" in user and f"```python\n{MLP.strip()}\n```" in user
    assert user.index("0.918") < user.index("0.650")  # the examples in the prompt's order
    assert ("class Model reaches about 4700 parameters and validation accuracy 0.936" in user
            and "(batch, 40)" in user and "(batch, 10)" in user)
    assert '"""Metrics' not in user  # a chat shows no docstrings for the model to repeat
    assert PROMPT_STYLES == ("completion", "chat")
    assert chat_messages(prompt) == list(prompt.messages)  # build_prompt renders it once


def test_chat_messages_for_clrs_name_the_function_s_signature():
    standard = (SEEDS_DIR / "clrs" / "haiku" / "standard.py").read_text()
    user = chat_messages(build_prompt([Example(standard, 500_000, 0.5)], "clrs/bfs"))[1]["content"]
    assert "`def get_triplet_msgs(z, edge_fts, graph_fts, nb_triplet_fts)`" in user
    assert "get_triplet_msgs gives the whole model about 450000 parameters and validation accuracy 0.510" in user


def test_a_prompt_that_brings_its_own_messages_is_sent_as_they_are():
    own = ({"role": "system", "content": "You fix programs."}, {"role": "user", "content": "Fix this."})
    prompt = replace(mnist1d_prompt(), messages=own)
    assert chat_messages(prompt) == list(own)


def test_a_chat_answer_to_chat_messages_becomes_a_program():
    # a Qwen-style answer: its own import spelling, prose after the fence; the prompt's imports are added
    answer = ("```python\nimport torch\nimport torch.nn as nn\n\nclass Model(nn.Module):\n"
              "    def __init__(self):\n        super(Model, self).__init__()\n        self.fc = nn.Linear(40, 10)\n\n"
              "    def forward(self, x):\n        return self.fc(x)\n```\n\nThis model has 410 parameters.")
    program = program_from_output(mnist1d_prompt(), answer)
    assert program.startswith("from torch import nn\nimport torch\nimport torch.nn as nn\n\nclass Model")
    assert program.endswith("        return self.fc(x)\n")
    assert_candidate(program)


def test_a_repair_prompt_ends_its_samples_where_the_model_starts_another_header():
    # seen with Qwen: the fix, then "# The same program, fixed ..." and the fix again, to the token limit
    cnn = SEEDS["cnn"]
    base = build_prompt([Example(cnn.code, 5210, 0.918)], "mnist1d")
    repair = build_repair_prompt(base, cnn.code, "RuntimeError: mat1 and mat2 shapes cannot be multiplied")
    assert set(base.stop) < set(repair.stop)
    body = "\n    def __init__(self):\n        super().__init__()\n"
    for header in (f"{FIXED_MARKER}, fixed so that it runs:\nimport torch\n", f"{BROKEN_MARKER} fails again\n",
                   "\"\"\"Metrics: {'num_params': 1}\"\"\"\n"):
        assert cut_at_stop(body + "\n" + header + body, repair.stop).rstrip() == body.rstrip()
    assert cut_at_stop(body, repair.stop) == body
    # a comment inside the fix is not a header: only a line that starts with one ends the sample
    assert cut_at_stop("    # This program's layers\n" + body, repair.stop) == "    # This program's layers\n" + body
    assert cut_at_stop(body + "\n" + FIXED_MARKER, base.stop) == body + "\n" + FIXED_MARKER
    # the program taken from an answer ends at the same texts, whichever back-end wrote it
    fix = cnn.code.split("class Model(nn.Module):")[1]
    program = program_from_output(repair, fix + f"\n{FIXED_MARKER}, fixed so that it runs:\n" + fix)
    assert program.count("class Model") == 1 and FIXED_MARKER not in program
    assert_candidate(program)
