"""Analysis for energy traders: the logic behind the notebooks in ``notebooks/``.

An edge of the application (DESIGN.md): it may use the models, the connectors (to read a
store), pandas and matplotlib. Each function returns a DataFrame or a matplotlib ``Figure``;
the notebooks only call them and explain what a trader sees (docs/notebooks.md).
"""
