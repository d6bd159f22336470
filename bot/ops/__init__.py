"""Thin adapters over the real systems. No adapter ever goes through a shell."""
