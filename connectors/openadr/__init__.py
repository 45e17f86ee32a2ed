"""OpenADR 2.0b connector: the VEN (openleadr) and the oadr <-> domain translation."""
