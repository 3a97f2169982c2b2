"""Models from PyPI packages: found without importing them, joined in order, checked against the
pinned sha256 before anything loads them; `hf:` specs resolved to what `from_pretrained` reads."""

from __future__ import annotations

import hashlib
import sys

import pytest

from evoprompt.search.demo import DEFAULT_LM, choose_lm
from evoprompt.search.lm import offline_models
from evoprompt.search.lm.base import LMConfigError
from evoprompt.search.lm.offline_models import ModelFileError, OfflineModel, materialise
from evoprompt.search.lm.weights import converted_folder, resolve_weights

CHUNKS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


@pytest.fixture
def packaged(tmp_path, monkeypatch):
    """Three data packages on sys.path (their __init__ would fail if imported) and an empty cache."""
    site = tmp_path / "site"
    for i, chunk in enumerate(CHUNKS, 1):
        folder = site / f"evp_fake_part{i}"
        (folder / "data").mkdir(parents=True)
        (folder / "__init__.py").write_text("raise ImportError('data only: never imported')\n")
        (folder / "data" / f"part0{i}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("EVOPROMPT_CACHE", str(tmp_path / "cache"))
    whole = b"".join(CHUNKS)
    model = OfflineModel(name="fake-model", packages=tuple(f"evp_fake_part{i}" for i in (1, 2, 3)),
                         members=tuple(f"data/part0{i}.bin" for i in (1, 2, 3)),
                         sha256=hashlib.sha256(whole).hexdigest(), size=len(whole), source="test", licence="none")
    return model, site


def test_chunks_are_joined_in_order_and_verified_once(packaged, tmp_path):
    model, _ = packaged
    path = materialise(model)
    assert path == tmp_path / "cache" / "models" / "fake-model.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert not any(name.startswith("evp_fake") for name in sys.modules)  # found, never imported
    stamp = path.with_name(path.name + ".sha256")
    assert stamp.read_text().strip() == model.sha256
    before = path.stat().st_mtime_ns
    assert materialise(model) == path and path.stat().st_mtime_ns == before  # not joined again


def test_a_chunk_that_does_not_match_the_pinned_hash_is_refused(packaged, tmp_path):
    model, site = packaged
    (site / "evp_fake_part2" / "data" / "part02.bin").write_bytes(b"tampered")
    with pytest.raises(ModelFileError, match="sha256 is .* not the pinned"):
        materialise(model)
    assert not (tmp_path / "cache" / "models" / "fake-model.gguf").exists()  # nothing half-written is left
    assert not list((tmp_path / "cache" / "models").glob(".fake-model*"))


def test_a_missing_package_names_the_command_that_installs_it(packaged):
    model, _ = packaged
    missing = OfflineModel(**{**model.__dict__, "packages": ("evp_fake_part1", "evp_not_installed", "evp_fake_part3")})
    with pytest.raises(ModelFileError, match="evp-not-installed is not installed .*make models"):
        materialise(missing)


def test_specs_resolve_to_what_from_pretrained_reads(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    assert resolve_weights(str(folder)) == str(folder)  # a local folder as it is
    assert resolve_weights("Qwen/Qwen2.5-Coder-0.5B-Instruct") == "Qwen/Qwen2.5-Coder-0.5B-Instruct"  # a hub id
    with pytest.raises(LMConfigError, match="no GGUF file"):
        resolve_weights(str(tmp_path / "absent.gguf"))
    one, two = tmp_path / "a.gguf", tmp_path / "b.gguf"
    one.write_bytes(b"GGUF one")
    two.write_bytes(b"GGUF one")
    # keyed by content: the same file under two names converts once
    assert converted_folder(one, tmp_path) == converted_folder(two, tmp_path)
    two.write_bytes(b"GGUF two")
    assert converted_folder(one, tmp_path) != converted_folder(two, tmp_path)


def test_the_demo_chooses_its_lm_in_the_documented_order(monkeypatch):
    from evoprompt.search import demo

    assert choose_lm({"EVOPROMPT_LM": "mutation"}) == ("mutation", "EVOPROMPT_LM is set")
    monkeypatch.setattr(demo, "hub_unreachable", lambda spec: None)
    assert choose_lm({})[0] == DEFAULT_LM
    monkeypatch.setattr(demo, "hub_unreachable", lambda spec: "the hub is not reachable")
    monkeypatch.setattr(offline_models, "preferred_spec", lambda: "hf:/models/qwen.gguf")
    spec, why = choose_lm({})
    assert spec == "hf:/models/qwen.gguf" and "the hub is not reachable" in why and "make models" in why
    monkeypatch.setattr(offline_models, "preferred_spec", lambda: None)
    spec, why = choose_lm({})
    assert spec == "mutation" and "no local model is installed" in why
