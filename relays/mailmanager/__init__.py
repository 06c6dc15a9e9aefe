"""The AWS SES Mail Manager-compatible facade (awsJson1_0 at `POST /`).

`views.py` is the endpoint (signature, permission, dispatch, errors); `relays.py` and `tags.py`
hold the operations; `shapes.py` the member checks, the Authentication union and ARNs;
`sigv4.py` verifies signatures; `keys.py` keeps the access keys' secrets encrypted.
"""
