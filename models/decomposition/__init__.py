"""Per-site decomposition of a fleet problem, solved on Dask and coordinated by prices."""

from models.decomposition.dual import DecomposedResult, DecompositionSettings, plan_decomposed
from models.decomposition.planner import DecomposingPlanner
from models.decomposition.split import CoupledCap, SiteSplit, split_by_site

__all__ = [
    "CoupledCap",
    "DecomposedResult",
    "DecomposingPlanner",
    "DecompositionSettings",
    "SiteSplit",
    "plan_decomposed",
    "split_by_site",
]
