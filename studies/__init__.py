"""Optuna studies: named ablation grids, custom grids and TPE tuning, on a journal file or a database, by many workers."""
