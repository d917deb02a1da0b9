"""Fairness audits of candidate models, read by the ethics committee."""
