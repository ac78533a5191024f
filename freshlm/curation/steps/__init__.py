"""Curation steps: small, composable, one contract (documents in, documents out).

See :mod:`freshlm.curation.steps.base` for the contract and
:mod:`freshlm.curation.steps.pipeline` for chaining them. Order used by
:func:`freshlm.curation.run.build_pipeline`: normalize, language, quality, dedup, pii,
toxicity, split.
"""

from freshlm.curation.steps.base import Doc, DocStep, Drop, Filter, Step
from freshlm.curation.steps.dedup import DedupStep
from freshlm.curation.steps.language import LanguageStep
from freshlm.curation.steps.normalize import NormalizeStep
from freshlm.curation.steps.pii import PIIStep
from freshlm.curation.steps.pipeline import Pipeline
from freshlm.curation.steps.quality import QualityStep
from freshlm.curation.steps.split import SplitStep
from freshlm.curation.steps.toxicity import ToxicityStep

__all__ = [
    "DedupStep",
    "Doc",
    "DocStep",
    "Drop",
    "Filter",
    "LanguageStep",
    "NormalizeStep",
    "PIIStep",
    "Pipeline",
    "QualityStep",
    "SplitStep",
    "Step",
    "ToxicityStep",
]
