"""The AWS SES Mail Manager-compatible facade (awsJson1_0 at `POST /`).

Built so far: access keys kept by the server and SigV4 verification (`sigv4.py`). The
operations themselves (CreateRelay, ...) are not served yet.
"""
