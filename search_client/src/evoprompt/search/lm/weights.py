"""Where an `hf:` model's weights come from: a hub id, a local folder, or a `.gguf` file.

transformers can read a GGUF file, but it dequantises every tensor on each load (~15 s for 135M
parameters, ~45 s for 0.5B on 2 cores) and a GGUF-loaded model cannot be saved as it is (its
quantizer is not serialisable). So a GGUF file is converted once into a plain safetensors folder
under the evoprompt cache, keyed by the file's sha256, and every later load reads that folder
(under a second). The folder appears whole or not at all (written aside, then renamed)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from .base import LMConfigError

log = logging.getLogger(__name__)

#: Bumped when a conversion's output changes, so folders written by an older one are made again.
CONVERSION = 2
#: Files a converted folder must hold to be used.
_CONVERTED = ("config.json", "model.safetensors", "tokenizer_config.json")


def cache_root() -> Path:
    """`$EVOPROMPT_CACHE`, else `$XDG_CACHE_HOME/evoprompt`, else ~/.cache/evoprompt."""
    if os.environ.get("EVOPROMPT_CACHE"):
        return Path(os.environ["EVOPROMPT_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evoprompt"


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def converted_folder(gguf: Path, cache: Path | None = None) -> Path:
    """Where the safetensors form of this GGUF file lives (whether or not it exists yet)."""
    return (cache or cache_root()) / "models" / f"gguf{CONVERSION}-{file_sha256(gguf)[:32]}"


def resolve_weights(name: str, cache: Path | None = None) -> str:
    """What to hand `from_pretrained`: a folder for a `.gguf` file (converted on first use), the
    folder itself, or the hub id unchanged."""
    path = Path(name).expanduser()
    if path.suffix.lower() != ".gguf":
        return str(path) if path.exists() else name
    if not path.is_file():
        raise LMConfigError(f"no GGUF file at {path}")
    folder = converted_folder(path, cache)
    if all((folder / f).is_file() for f in _CONVERTED):
        return str(folder)
    convert_gguf(path, folder)
    return str(folder)


def convert_gguf(gguf: Path, folder: Path) -> None:
    """Dequantise `gguf` into a float32 safetensors folder with its tokenizer at `folder`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (once; later loads read the folder)", gguf, folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except ImportError as exc:  # the gguf package is missing
        raise LMConfigError(f"cannot read {gguf}: {exc} (pip install gguf, or `make setup`)") from None
    except Exception as exc:  # an unknown architecture, a corrupt file, ...
        raise LMConfigError(f"cannot load the GGUF file {gguf}: {exc}".splitlines()[0]) from None
    # the GGUF quantizer cannot be serialised; the dequantised weights are plain tensors
    model.hf_quantizer = None
    # a server reading this folder (transformers serve) samples only when the generation config says
    # so; without it every sample of a prompt would be the same greedy answer
    model.generation_config.do_sample = True
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        (staging / "SOURCE").write_text(f"{gguf.resolve()}\n")
        try:
            staging.rename(folder)
        except OSError:  # another process converted it meanwhile: keep theirs
            if not all((folder / f).is_file() for f in _CONVERTED):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
