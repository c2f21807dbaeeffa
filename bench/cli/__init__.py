"""The `bench` command: thin Typer commands (main.py) over plain functions; options and paths shared by
every command module."""
from bench.cli.main import app, main  # noqa: F401 - the console script is bench.cli:main
