"""Adapters to external systems, one subpackage per system (added by later issues)."""
