"""The service database: schema, engines, migrations."""
