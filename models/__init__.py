"""The mathematics: fleet planner (Pyomo/HiGHS), heuristic fallback, flexibility envelope,
event feasibility and demand-response settlement."""
