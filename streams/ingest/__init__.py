"""Scans in: validating a record and event-time order (pure), the source intake and publishing (I/O)."""
