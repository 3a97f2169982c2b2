"""The paper's prompt format and the way LM outputs become programs."""

from __future__ import annotations

import pytest

from evoprompt.search.prompt import Example, build_prompt, program_from_output, target_metrics
from evoprompt.search.seeds import list_seeds

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
