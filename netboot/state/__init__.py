"""Durable state over SQLite: typed stores (leases, registry, render versions),
each owning its file; engines hold only the in-memory state handed to them."""
