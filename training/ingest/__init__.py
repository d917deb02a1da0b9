"""Importers that turn outside data into the contract: OULAD and synthetic cohorts."""
