"""Operators' commands (``manage.py ...``): thin, each parses arguments and calls a service.

May import any package but admin and views.
"""
