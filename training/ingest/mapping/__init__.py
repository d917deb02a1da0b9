"""Mapping-driven import: an institution's exports into the data contract, declared in a TOML file.

``schema`` checks the mapping file, ``readers`` read export files as text, ``convert`` builds each
contract table in SQL, ``importer`` stages, validates and publishes (docs/mapping.md).
"""
