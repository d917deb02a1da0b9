"""Why a scoring run did not publish; in every case the previously published batch is still served."""

from __future__ import annotations


class ScoringError(Exception):
    """A scoring run could not complete; the previously published batch is still served."""


class ScoringInProgressError(ScoringError):
    """Another run holds the database's scoring lock; this one was refused before changing anything."""


class IncompleteBatchError(ScoringError):
    """The rows stored for a run are not the rows it produced, so the run was not published."""
