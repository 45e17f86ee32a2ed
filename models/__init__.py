"""The mathematics: fleet planner (Pyomo/HiGHS), heuristic fallback, flexibility envelope."""
