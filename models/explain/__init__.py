"""Explanations: exact contributions turned into plain-language factors, strengths and suggestions."""

from waymark.models.explain.cohort import ExplainedCohort, explain_cohort
from waymark.models.explain.coverage import SourceCoverage
from waymark.models.explain.sentences import brief, describe, describe_cohort

__all__ = ["ExplainedCohort", "SourceCoverage", "brief", "describe", "describe_cohort", "explain_cohort"]
