"""Tuning: each framework at its own best settings (Optuna), then the comparison."""
