"""Waymark's model code: the data contract, features, estimators and explanations.

This package imports nothing else of Waymark's; everything else builds on it.
"""
