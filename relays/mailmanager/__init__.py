"""The AWS SES Mail Manager-compatible facade (awsJson1_0 at `POST /`).

`views.py` serves the relay operations, `sigv4.py` verifies signatures, `keys.py` keeps the
access keys' secrets encrypted.
"""
