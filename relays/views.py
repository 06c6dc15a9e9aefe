"""GreenArrow Engine API v3 facade: thin viewsets over the write services.

Each viewset names its model, serializer, envelope keys and services; reading the body,
checking attributes, paging and rendering live once, in `VirtualMtaViewSet`.
"""

import json

from django.core.exceptions import RequestDataTooBig
from rest_framework import viewsets
from rest_framework.response import Response

from relays import services
from relays.envelope import JsonOnly, PayloadTooLarge
from relays.errors import InvalidRequest, NotFound, ValidationFailed
from relays.models import RelayServer
from relays.pagination import paginate
from relays.serializers import RelayServerSerializer, flatten_errors, unknown_attributes

_MAX_ID = 2**63 - 1


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def read_json_object(request):
    """The request body as a JSON object, whatever the Content-Type (some GreenArrow clients
    send none). Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE before reading it."""
    try:
        raw = request._request.body
    except RequestDataTooBig:
        raise PayloadTooLarge() from None
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("the request body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


class VirtualMtaViewSet(viewsets.GenericViewSet):
    """List, get, create, update (partial PUT) and delete for one VirtualMTA type."""

    content_negotiation_class = JsonOnly
    lookup_value_regex = "[0-9]+"
    root_key = None  # "relay_server"
    list_key = None  # "relay_servers"
    list_filters = {}  # query parameter -> function(queryset, value) -> queryset
    create_service = None
    update_service = None

    def get_object(self):
        pk = int(self.kwargs["pk"])
        found = self.get_queryset().filter(pk=pk).first() if pk <= _MAX_ID else None
        if found is None:
            raise NotFound(f"no {self.root_key} with id {self.kwargs['pk']}")
        return found

    def validated_body(self, partial):
        body = read_json_object(self.request)
        unknown = [key for key in body if key != self.root_key]
        if self.root_key not in body:
            raise InvalidRequest(f"the request body must have the key {self.root_key}")
        record = body[self.root_key]
        if not isinstance(record, dict):
            raise InvalidRequest(f"{self.root_key} must be a hash")
        serializer = self.get_serializer(data=record, partial=partial)
        unknown += [f"{self.root_key}.{path}" for path in unknown_attributes(serializer, record)]
        if unknown:
            raise InvalidRequest([f"unknown attribute {path}" for path in unknown])
        if not serializer.is_valid():
            raise ValidationFailed(flatten_errors(serializer.errors))
        return serializer.validated_data

    def respond(self, pk):
        return Response({self.root_key: self.get_serializer(self.get_queryset().get(pk=pk)).data})

    def list(self, request):
        params = request.query_params.dict()
        queryset = self.get_queryset()
        for name, apply in self.list_filters.items():
            if name in params:
                queryset = apply(queryset, params.pop(name))
        unknown = sorted(set(params) - {"page", "page_token"})
        if unknown:
            raise InvalidRequest([f"unknown query parameter {name}" for name in unknown])
        return Response(paginate(queryset, params, self.list_key))

    def retrieve(self, request, pk):
        return Response({self.root_key: self.get_serializer(self.get_object()).data})

    def create(self, request):
        record = type(self).create_service(self.validated_body(partial=False))
        return self.respond(record.pk)

    def update(self, request, pk):
        self.get_object()  # 404 before 400: a PUT to a missing record is "not found"
        record = type(self).update_service(int(pk), self.validated_body(partial=True))
        return self.respond(record.pk)

    def destroy(self, request, pk):
        self.get_object()
        services.delete_virtual_mta(self.get_queryset().model, int(pk))
        return Response({})


class RelayServerViewSet(VirtualMtaViewSet):
    queryset = RelayServer.objects.select_related("redirect")
    serializer_class = RelayServerSerializer
    root_key, list_key = "relay_server", "relay_servers"
    create_service = services.create_relay_server
    update_service = services.update_relay_server
