"""Metrics and reports computed from run directories."""
