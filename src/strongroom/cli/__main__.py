"""``python -m strongroom.cli``."""

from strongroom.cli.main import main

main()
