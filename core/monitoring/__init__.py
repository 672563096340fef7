"""Monitoring floor: dynamic monitoring of low-income persons (动态监测) and the department feeds it reads.

:mod:`.feeds` imports department files; :mod:`.indicators` computes the indicators plugins declare;
:mod:`.cycle` scores a month, assigns warning levels and raises alerts.
"""
