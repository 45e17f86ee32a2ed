"""OSCP 2.0 flexibility provider: the capacity provider's forecasts become plan limits
(docs/oscp.md)."""
