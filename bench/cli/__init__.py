"""The `bench` command: Typer signatures (main.py) over plain functions (commands.py), and the
options and folders every command module shares (options.py, paths.py)."""
