"""Tests of the personal-data work (PIPL): the audit hash chain, exports, retention, classification."""
