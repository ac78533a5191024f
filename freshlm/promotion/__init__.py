"""The promotion gate: rules, the decision's effects, and rollback.

* :mod:`freshlm.promotion.rules` — the gate's rules from one YAML file (:func:`load_rules`,
  :class:`PromotionRules`) and :func:`decide` on an evaluation report, giving a
  :class:`Decision` with one :class:`RuleResult` per rule (observed value vs threshold).
* :mod:`freshlm.promotion.decision` — :func:`promote` (compare-and-swap of ``production``
  expecting the evaluated baseline, audited with the metrics) and :func:`reject`; a decision
  record under ``registry/decisions/<candidate>/`` for every outcome; :func:`is_rejected`,
  :func:`list_decisions`.
* :mod:`freshlm.promotion.rollback` — :func:`rollback_production` to a chosen earlier version.
* :mod:`freshlm.promotion.messages` — the Slack summary, rejection alert and rollback notice.

Aliases, versions and the audit log are the registry's (:mod:`freshlm.registry`). Importing
this package is cheap (no torch, transformers or Airflow), so DAG files may.
"""

from __future__ import annotations

from freshlm.promotion.decision import (
    CONFLICT,
    DECISIONS_PREFIX,
    PROMOTED,
    REJECTED,
    apply_decision,
    is_rejected,
    latest_verdict,
    list_decisions,
    promote,
    reject,
)
from freshlm.promotion.messages import promotion_summary, rejection_alert, rollback_notice
from freshlm.promotion.rollback import RollbackRefused, available_versions, rollback_production
from freshlm.promotion.rules import (
    DEFAULT_RULES_FILE,
    RULE_NAMES,
    Decision,
    PromotionRules,
    ReportError,
    RuleConfig,
    RuleResult,
    RulesError,
    decide,
    load_rules,
)

__all__ = [
    "CONFLICT",
    "DECISIONS_PREFIX",
    "DEFAULT_RULES_FILE",
    "PROMOTED",
    "REJECTED",
    "RULE_NAMES",
    "Decision",
    "PromotionRules",
    "ReportError",
    "RollbackRefused",
    "RuleConfig",
    "RuleResult",
    "RulesError",
    "apply_decision",
    "available_versions",
    "decide",
    "is_rejected",
    "latest_verdict",
    "list_decisions",
    "load_rules",
    "promote",
    "promotion_summary",
    "reject",
    "rejection_alert",
    "rollback_notice",
    "rollback_production",
]
