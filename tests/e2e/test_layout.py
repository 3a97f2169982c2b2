"""The layout is the architecture: three distributions, one namespace package, and each part imports
only what DESIGN section 1 allows (checked on the source, so a lazy import cannot hide)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from tests.support.servers import REPO

PARTS = {"sdk": ("sdk", "evoprompt-sdk"), "evaluator": ("evaluator", "evoprompt-evaluator"),
         "search": ("search_client", "evoprompt-search")}
# what each part may import of the others
ALLOWED = {"sdk": set(), "evaluator": {"sdk"}, "search": {"sdk"}}


def imported_parts(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "evoprompt" and len(parts) > 1 and parts[1] in PARTS:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_part_imports_only_what_it_may(part):
    folder, _ = PARTS[part]
    sources = sorted((REPO / folder / "src" / "evoprompt" / part).rglob("*.py"))
    assert sources
    bad = {str(p.relative_to(REPO)): sorted(imported_parts(p) - ALLOWED[part] - {part}) for p in sources}
    assert not {k: v for k, v in bad.items() if v}


@pytest.mark.parametrize("part", sorted(PARTS))
def test_one_namespace_package_and_exact_sibling_pins(part):
    folder, dist = PARTS[part]
    assert not (REPO / folder / "src" / "evoprompt" / "__init__.py").exists()  # implicit namespace package
    project = tomllib.loads((REPO / folder / "pyproject.toml").read_text())["project"]
    assert project["name"] == dist
    siblings = [r for r in project.get("dependencies", []) if r.startswith("evoprompt-")]
    for extra in project.get("optional-dependencies", {}).values():
        siblings += [r for r in extra if r.startswith("evoprompt-")]
    assert all(r.endswith(f"=={project['version']}") for r in siblings), siblings


def test_the_sdk_depends_on_grpcio_and_protobuf_only():
    project = tomllib.loads((REPO / "sdk" / "pyproject.toml").read_text())["project"]
    names = sorted(r.split(">")[0].split("=")[0].split("<")[0] for r in project["dependencies"])
    assert names == ["grpcio", "protobuf"] and "optional-dependencies" not in project


def test_every_installed_requirement_is_pinned_by_the_constraints():
    from importlib import metadata

    # constraints.txt pins the code; models/*.txt pin (by hash) the packages that carry LM weights
    pins = [REPO / "constraints.txt", *sorted((REPO / "models").glob("*.txt"))]
    pinned = {line.split("==")[0].lower().replace("_", "-")
              for path in pins for line in path.read_text().splitlines() if "==" in line and not line.startswith("#")}
    ours = {"evoprompt-sdk", "evoprompt-evaluator", "evoprompt-search", "pip"}
    installed = {d.metadata["Name"].lower().replace("_", "-") for d in metadata.distributions()}
    assert installed - pinned - ours == set(), "run `make lock` and commit constraints.txt"


# The evaluator's own layers, lowest first: each module imports only from its layer and those below it.
# The job protocol (and what it stands on) knows no sandbox, a sandbox no executor, an executor no scheduler.
EVALUATOR_LAYERS = (
    ("job protocol", {"protocol", "harness", "files", "instance", "images", "image_builder", "version", "__init__"}),
    ("sandbox", {"sandbox"}),
    ("executor", {"executor", "fleet", "settings"}),
    ("service", None),  # everything else: scheduler, scoring, tasks, store, servicer, server, cli, ...
)


def evaluator_layer(module: tuple[str, ...]) -> int:
    """The layer of `module`, a path inside evoprompt.evaluator (('sandbox', 'docker'), ('server',), ...)."""
    head = module[0] if module else "__init__"
    return next(i for i, (_, names) in enumerate(EVALUATOR_LAYERS) if names is None or head in names)


def evaluator_imports(path: Path, package: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Every evoprompt.evaluator module `path` imports, function-local imports included, as paths."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [tuple(a.name.split(".")) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = tuple((node.module or "").split(".")) if node.module else ()
            if node.level:
                base = package[: len(package) - node.level + 1] + base
            else:
                base = base if base[:2] == ("evoprompt", "evaluator") else ()
                base = base[2:] if base else None
            if base is None:
                continue
            # `from . import x` (or `from evoprompt.evaluator import x`) names a module; `from .m import f` names m
            targets = [base + (a.name,) for a in node.names] if not node.module or not base else [base]
        else:
            continue
        for target in targets:
            if target[:2] == ("evoprompt", "evaluator"):
                target = target[2:]
            elif isinstance(node, ast.Import):
                continue
            found.add(target)
    return found


def test_the_evaluator_s_layers_never_reach_up():
    root = REPO / "evaluator" / "src" / "evoprompt" / "evaluator"
    bad = []
    for path in sorted(root.rglob("*.py")):
        module = path.relative_to(root).with_suffix("").parts
        package = module[:-1]
        mine = evaluator_layer(module)
        for target in evaluator_imports(path, package):
            if evaluator_layer(target) > mine:
                bad.append(f"{'/'.join(module)} ({EVALUATOR_LAYERS[mine][0]}) imports {'.'.join(target)} "
                           f"({EVALUATOR_LAYERS[evaluator_layer(target)][0]})")
    assert not bad, "\n".join(bad)


def test_the_layer_check_sees_a_function_local_import_that_reaches_up(tmp_path):
    module = tmp_path / "docker.py"
    module.write_text("def f():\n    from ..scheduler import Scheduler\n    from . import base\n"
                      "    from evoprompt.evaluator import server\n")
    targets = evaluator_imports(module, ("sandbox",))
    assert ("scheduler",) in targets and ("sandbox", "base") in targets and ("server",) in targets
    assert evaluator_layer(("scheduler",)) > evaluator_layer(("sandbox", "docker"))
