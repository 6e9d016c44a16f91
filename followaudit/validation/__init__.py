"""Validation harnesses: synthetic ground truth for methods that have no labelled data."""
