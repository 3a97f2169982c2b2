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

    pinned = {line.split("==")[0].lower().replace("_", "-")
              for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line}
    ours = {"evoprompt-sdk", "evoprompt-evaluator", "evoprompt-search", "pip"}
    installed = {d.metadata["Name"].lower().replace("_", "-") for d in metadata.distributions()}
    assert installed - pinned - ours == set(), "run `make lock` and commit constraints.txt"
