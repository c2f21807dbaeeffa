"""Named Optuna studies (ablations, tuning): not built yet."""
