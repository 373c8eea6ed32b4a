"""Signed evidence for jurists: revocation reports, destruction records, covenant-end notices, their pages."""
