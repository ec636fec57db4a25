"""Fakes of paid providers' HTTP APIs, for tests that must not touch the network."""
