"""The scoring job: the champion model turns a cohort into explained indicators, published atomically."""

from waymark.service.scoring.champion import ChampionUnavailableError, load_champion
from waymark.service.scoring.errors import IncompleteBatchError, ScoringError, ScoringInProgressError
from waymark.service.scoring.job import ScoringSummary, score

__all__ = [
    "ChampionUnavailableError",
    "IncompleteBatchError",
    "ScoringError",
    "ScoringInProgressError",
    "ScoringSummary",
    "load_champion",
    "score",
]
