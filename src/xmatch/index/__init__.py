"""Searching rows in memory: the sky index, proper motions, and the one builder of answers.

:class:`SkyIndex` answers every search (:mod:`xmatch.index.protocol`) with the numba
kernels; :mod:`xmatch.index.results` builds every answer table, here, in the nightly
solar-system caches and in the router's merges.
"""

from xmatch.index.motion import Motion, MotionBounds, propagate
from xmatch.index.results import (
    MOVED_COLUMNS,
    POSITION_ANGLE_COLUMN,
    QUERY_COLUMN,
    RANK_COLUMN,
    SEPARATION_COLUMN,
    rows_found,
)
from xmatch.index.sky_index import SkyIndex, choose_cell_order, crossmatch, moc_contains

__all__ = ["MOVED_COLUMNS", "POSITION_ANGLE_COLUMN", "QUERY_COLUMN", "RANK_COLUMN",
           "SEPARATION_COLUMN", "Motion", "MotionBounds", "SkyIndex", "choose_cell_order",
           "crossmatch", "moc_contains", "propagate", "rows_found"]
