"""``python -m fedimeter`` runs the command line."""

from fedimeter.cli import main

main()
