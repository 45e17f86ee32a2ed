"""In-memory adapters: real implementations of ports for the demo, notebooks and tests."""
