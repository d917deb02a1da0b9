"""The scoring job: the champion model turns a cohort into explained indicators, published atomically."""

from service.scoring.champion import ChampionUnavailableError, load_champion
from service.scoring.errors import IncompleteBatchError, ScoringError, ScoringInProgressError
from service.scoring.job import ScoringSummary, score

__all__ = [
    "ChampionUnavailableError",
    "IncompleteBatchError",
    "ScoringError",
    "ScoringInProgressError",
    "ScoringSummary",
    "load_champion",
    "score",
]
