"""The GreenArrow Engine API v3 facade (`/ga/api/v3/eng/...`, HTTP Basic).

`views.py` holds thin viewsets over `relays.services`; `serializers.py` the request and
response shapes; `envelope.py` the one error shape; `pagination.py` the list pages;
`authentication.py` and `permissions.py` who may call it; `urls.py` the routes.
"""
