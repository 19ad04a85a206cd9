"""The cross-check harness: backends, tolerances, comparison, op table, report."""
