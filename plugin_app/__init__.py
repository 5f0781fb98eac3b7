"""Bulk course export and bulk content upload for Open edX (Django app plugin)."""
