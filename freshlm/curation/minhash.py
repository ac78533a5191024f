"""MinHash signatures and LSH band keys, vectorized with numpy.

A text is simplified (lowercase, numbers to ``0``, everything that is not a letter or digit to
one space, as datatrove's MinHash does), cut into character shingles of ``shingle_chars``, and
each shingle hashed once into 32 bits with vectorized polynomial hashing over the code points.
Each of ``num_perm`` permutations is a bijection of the 32-bit space (an odd multiplier, an
offset and an xor-shift), computed for all shingles at once as a ``(shingles, num_perm)`` uint32
matrix — 32-bit lanes, because numpy vectorizes 32-bit multiplies and not 64-bit ones. The
signature is the column-wise minimum. ``band_keys`` folds each band of ``rows`` values into one
64-bit key, salted by the band index so keys from different bands never meet.

Everything is deterministic given ``DedupConfig.seed``: signatures and keys are stable across
processes and machines, so band keys can be stored in the persistent index.
"""

from __future__ import annotations

import re

import numpy as np

from freshlm.curation.config import DedupConfig

_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_NON_WORD_RE = re.compile(r"[\W_]+")
_POLY = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime: a good odd multiplier for polynomials
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)  # MurmurHash3 fmix64 constants
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_CHUNK = 4096  # shingles per block, bounding the (shingles, num_perm) matrix to ~2 MB


def simplify(text: str) -> str:
    """The text MinHash sees: lowercase, numbers as 0, one space between words."""
    text = _NUMBER_RE.sub("0", text.lower())
    return _NON_WORD_RE.sub(" ", text).strip()


def shingle_hashes(text: str, k: int) -> np.ndarray:
    """Unique 32-bit hashes of the k-character shingles of ``simplify(text)`` (uint32)."""
    simple = simplify(text)
    points = np.frombuffer(simple.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    m = len(points) - k + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint32)
    h = points[:m].copy()
    for j in range(1, k):
        h *= _POLY
        h += points[j : j + m]
    # fmix64: spreads the polynomial's structure over all bits before keeping 32 of them.
    h ^= h >> np.uint64(33)
    h *= _MIX1
    h ^= h >> np.uint64(33)
    h *= _MIX2
    h ^= h >> np.uint64(33)
    return np.unique(h.astype(np.uint32))


class MinHasher:
    """Signatures and band keys for one :class:`DedupConfig`."""

    def __init__(self, config: DedupConfig | None = None) -> None:
        self.config = config = config or DedupConfig()
        rng = np.random.Generator(np.random.PCG64(config.seed))
        self._a = (rng.integers(0, 2**32, config.num_perm, dtype=np.uint64) | 1).astype(np.uint32)
        self._b = rng.integers(0, 2**32, config.num_perm, dtype=np.uint64).astype(np.uint32)
        self._band_mult = rng.integers(0, 2**64, (1, config.rows), dtype=np.uint64) | np.uint64(1)
        self._band_salt = rng.integers(0, 2**64, config.bands, dtype=np.uint64)

    @property
    def params(self) -> dict[str, int | str]:
        """What must match for two band keys to be comparable (stored in the index)."""
        c = self.config
        return {
            "scheme": "char-shingle-minhash-v1",
            "shingle_chars": c.shingle_chars,
            "bands": c.bands,
            "rows": c.rows,
            "seed": c.seed,
        }

    def signature(self, shingles: np.ndarray) -> np.ndarray:
        """The (num_perm,) uint32 MinHash signature of a set of shingle hashes (non-empty)."""
        sig = np.full(self.config.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        a, b = self._a, self._b
        for start in range(0, len(shingles), _CHUNK):
            block = shingles[start : start + _CHUNK, None] * a + b
            block ^= block >> np.uint32(15)
            np.minimum(sig, block.min(axis=0), out=sig)
        return sig

    def band_keys_of(self, signature: np.ndarray) -> np.ndarray:
        """(bands,) uint64 keys: one per band of ``rows`` signature values, salted by band."""
        rows = signature.reshape(self.config.bands, self.config.rows).astype(np.uint64)
        return (rows * self._band_mult).sum(axis=1, dtype=np.uint64) ^ self._band_salt

    def band_keys(self, text: str) -> np.ndarray | None:
        """Band keys of ``text``, or None when it has fewer than ``min_shingles`` shingles."""
        shingles = shingle_hashes(text, self.config.shingle_chars)
        if len(shingles) < self.config.min_shingles:
            return None
        return self.band_keys_of(self.signature(shingles))


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Share of equal signature positions: an unbiased estimate of the Jaccard similarity."""
    return float(np.mean(sig_a == sig_b))
