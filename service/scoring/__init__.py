"""The scoring job: the champion model turns a cohort into explained indicators, published atomically."""

from service.scoring.champion import ChampionUnavailableError, load_champion
from service.scoring.job import ScoringError, ScoringSummary, score

__all__ = ["ChampionUnavailableError", "ScoringError", "ScoringSummary", "load_champion", "score"]
