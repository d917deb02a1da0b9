"""Explanations: exact contributions turned into plain-language factors, strengths and suggestions."""

from waymark.models.explain.cohort import ExplainedCohort, explain_cohort
from waymark.models.explain.sentences import brief, describe

__all__ = ["ExplainedCohort", "brief", "describe", "explain_cohort"]
