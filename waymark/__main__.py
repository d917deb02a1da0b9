"""``python -m waymark``."""

from waymark.cli import main

main()
