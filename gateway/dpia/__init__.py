"""The processing register (GDPR art. 30) and the DPIA (art. 35), generated from the configuration.

Pure generation code: it reads a `PolicyConfig` and returns text. Writing files, reading the human
sections back and reading git revisions live in `generate.py`, `human.py` and `revisions.py`.
The documents speak Dutch; their words come from the Babel catalogue (`lang.py`), an English rendition
on request.
"""
