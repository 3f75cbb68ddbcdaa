"""Replay (I/O): archives of raw scans, republishing history into a namespace at a speed, its workers."""
