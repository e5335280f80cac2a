"""annopipe: political-analysis briefs to corrected, machine-readable knowledge."""

__version__ = "0.1.0"
