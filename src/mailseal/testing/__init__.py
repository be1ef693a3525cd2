"""Helpers for mailseal's own tests (and for anyone testing against mailseal).

Production code never imports this package.
"""
