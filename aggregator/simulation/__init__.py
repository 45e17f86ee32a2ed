"""Site simulator: simulated chargers and vehicles that speak the site-gateway MQTT contract.

``clock`` (the scaled clock the demo shares with the aggregator), ``charger`` and ``model``
(pure physics of one site) and ``runner`` (the sites on MQTT, one gateway client per site).
An edge of the application: it uses the domain, scenarios and the MQTT connector's site side.
"""
