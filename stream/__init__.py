"""skewstream: score and learn from highly imbalanced event streams, online."""

__version__ = "0.1.0"
