"""The bundled corpus and a character vocabulary.

The corpus is the text of CPython's `pydoc_data.topics` (the help topics of the language
reference, about 465,000 characters), which ships with the standard library: no download.

    >>> from symrnn.data import CharVocab, pydoc_text
    >>> text = pydoc_text()
    >>> vocab = CharVocab.from_text(text)
    >>> vocab.decode(vocab.encode("def f():")) == "def f():"
    True
"""
from __future__ import annotations

import numpy as np

from runtime.errors import ConfigError


def pydoc_text() -> str:
    """The help topics of `pydoc_data.topics`, joined in sorted topic order."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip pydoc_data from the standard library
        raise ConfigError("the bundled corpus needs the standard library's pydoc_data "
                          "module, which this Python lacks; pass your own text") from None
    return "\n".join(topics[k] for k in sorted(topics))


class CharVocab:
    """Characters <-> integer ids, ids in order of first sorted character."""

    def __init__(self, chars):
        self.chars = sorted(set(chars))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        if not text:
            raise ConfigError("CharVocab: the text is empty")
        return cls(text)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ConfigError(f"CharVocab.encode: characters {unknown[:5]!r} are not in the "
                              f"vocabulary of {len(self)}")
        return np.fromiter((self.index[c] for c in text), np.int32, len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def split_holdout(tokens: np.ndarray, valid_fraction: float = 0.1):
    """`(train, valid)`: the last `valid_fraction` of the stream is held out."""
    if not 0 < valid_fraction < 1:
        raise ConfigError(f"split_holdout: 'valid_fraction' must be in (0, 1), given "
                          f"{valid_fraction!r}")
    cut = int(len(tokens) * (1 - valid_fraction))
    return tokens[:cut], tokens[cut:]


__all__ = ["CharVocab", "pydoc_text", "split_holdout"]
