"""Retention: what is due for destruction and why (`plan`), and destroying it by crypto-shredding (`run`)."""
