"""The `waymark` command: the one thin place that knows every package."""
