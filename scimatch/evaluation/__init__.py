"""Evaluation commands: retrieval quality on BEIR-format sets (figures printed, never asserted)."""
