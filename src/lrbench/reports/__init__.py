"""Reports: tables (terminal, Markdown, CSV, JSON), plots and figures (matplotlib) of policies
and benchmark results.

Modules here import matplotlib only inside their functions, so importing them stays cheap.
"""
