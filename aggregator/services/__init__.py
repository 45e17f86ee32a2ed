"""Use cases: plan the fleet, dispatch setpoints, handle grid events. Domain and ports only."""
