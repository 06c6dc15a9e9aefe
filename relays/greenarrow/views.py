"""GreenArrow Engine API v3 facade: thin viewsets over the write services.

Reading the body, checking attributes and query parameters, paging and rendering live once, in
`GreenArrowView` and `VirtualMtaViewSet`; each resource names its model, serializer and keys.
"""

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.db.models.functions import Lower
from django.utils.cache import patch_cache_control
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response

from relays import audit, json_bodies, references, services
from relays import validators as v
from relays.errors import InvalidRequest, NotFound, ValidationFailed
from relays.greenarrow.envelope import JsonOnly, PayloadTooLarge
from relays.greenarrow.pagination import paginate, paginate_list
from relays.greenarrow.schema import (
    document_default_virtual_mta,
    document_virtual_mta_viewset,
    document_virtual_mtas,
)
from relays.greenarrow.serializers import (
    IpAddressSerializer,
    ReferenceField,
    RelayServerSerializer,
    RoutingRuleSerializer,
    flatten_errors,
    unknown_attributes,
)
from relays.models import (
    DefaultVirtualMta,
    DeliverThrough,
    DomainOverride,
    IpAddress,
    RecordCount,
    RelayServer,
    RoutingRule,
    VirtualMta,
)

_MAX_ID = 2**63 - 1


def read_json_object(request):
    """The request body as a JSON object, whatever the Content-Type (some GreenArrow clients
    send none). Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE before reading it."""
    try:
        raw = request._request.body
    except RequestDataTooBig:
        raise PayloadTooLarge() from None
    try:
        data = json_bodies.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("the request body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


class GreenArrowView(viewsets.GenericViewSet):
    """What every GreenArrow resource shares: JSON only, bodies with one root key, strict
    query parameters, ids that fit the database."""

    content_negotiation_class = JsonOnly
    lookup_value_regex = "[0-9]+"
    list_filters = {}  # query parameter -> function(queryset, value) -> queryset
    # No OPTIONS: the vendor's API has none, and DRF's metadata answer (built from serializers
    # it cannot introspect) was a 500 on some paths. OPTIONS is a 405 like any other method a
    # path lacks, and `Allow` does not list it; /ga/api/v3/schema describes every operation.
    http_method_names = [m for m in viewsets.GenericViewSet.http_method_names if m != "options"]

    def dispatch(self, request, *args, **kwargs):
        # Every change this request makes is audited as made through this API, by its user.
        with audit.acting("greenarrow", request):
            return super().dispatch(request, *args, **kwargs)

    def root_body(self, root_key, unknown_inside=lambda value: []):
        """The value under `root_key`. Any other top-level key, and every path that
        `unknown_inside(value)` finds, is refused as an unknown attribute, all at once."""
        body = read_json_object(self.request)
        if root_key not in body:
            raise InvalidRequest(f"the request body must have the key {root_key}")
        value = body[root_key]
        unknown = [key for key in body if key != root_key]
        unknown += [f"{root_key}.{path}" for path in unknown_inside(value)]
        if unknown:
            # A key may hold a lone surrogate, which no UTF-8 answer can echo: escaped.
            raise InvalidRequest(
                [
                    f"unknown attribute {path.encode('utf-8', 'backslashreplace').decode()}"
                    for path in unknown
                ]
            )
        return value

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.action is not None:  # None: a method the path lacks, answered 405 next
            self.params = self.query(*self.query_parameters())

    def query_parameters(self):
        """What the query string may hold: paging on lists (and a list's filters), nothing on
        anything else, so a misspelt parameter never silently does nothing."""
        if self.action == "list":
            return {"page", "page_token", *self.list_filters}
        return {"page", "page_token"} if self.action == "used_by" else set()

    def query(self, *allowed):
        """The query string as a dict; a parameter the action does not know is refused."""
        params = self.request.query_params.dict()
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise InvalidRequest([f"unknown query parameter {name}" for name in unknown])
        unstorable = [name for name, value in params.items() if not v.is_storable(value)]
        if unstorable:
            raise InvalidRequest(
                [f"{name} must be text without NUL characters" for name in sorted(unstorable)]
            )
        return params

    def finalize_response(self, request, response, *args, **kwargs):
        # Answers may carry SMTP credentials: no browser or proxy cache keeps one.
        patch_cache_control(response, no_store=True)
        return super().finalize_response(request, response, *args, **kwargs)

    def lookup(self, queryset, label):
        pk = int(self.kwargs["pk"])
        found = queryset.filter(pk=pk).first() if pk <= _MAX_ID else None
        if found is None:
            raise NotFound(f"no {label} with id {self.kwargs['pk']}")
        return found


class VirtualMtaViewSet(GreenArrowView):
    """List, get, create, update (partial PUT) and delete for one VirtualMTA type."""

    root_key = None  # "relay_server"
    list_key = None  # "relay_servers"

    def get_object(self):
        return self.lookup(self.get_queryset(), self.root_key)

    def validated_body(self, partial):
        serializer = self.get_serializer(partial=partial)
        record = self.root_body(
            self.root_key,
            lambda value: unknown_attributes(serializer, value) if isinstance(value, dict) else [],
        )
        if not isinstance(record, dict):
            raise InvalidRequest(f"{self.root_key} must be a hash")
        serializer = self.get_serializer(data=record, partial=partial)
        if not serializer.is_valid():
            raise ValidationFailed(flatten_errors(serializer.errors))
        return serializer.validated_data

    def respond(self, pk):
        record = self.get_queryset().get(pk=pk)
        return self.tagged(Response({self.root_key: self.get_serializer(record).data}), record)

    def list(self, request):
        params = self.params
        queryset = self.get_queryset()
        filters = [name for name in self.list_filters if name in params]
        for name in filters:
            queryset = self.list_filters[name](queryset, params.pop(name))
        # Unfiltered, the total is the trigger-kept count (no scan of the table).
        counted = None if filters else RecordCount.of(self.queryset.model.VMTA_TYPE)
        return Response(paginate(queryset, params, self.list_key, counted=counted))

    def retrieve(self, request, pk):
        record = self.get_object()
        return self.tagged(Response({self.root_key: self.get_serializer(record).data}), record)

    @staticmethod
    def tagged(response, record):
        """A single-record answer carries the record's ETag (its version), for If-Match."""
        response["ETag"] = record.etag
        return response

    def if_match(self):
        """The versions `If-Match` allows a PUT or DELETE to change (None: any; the header is
        optional, so vendor scripts keep working). A tag this server never gave (a weak one,
        another shape) matches nothing, and the write is refused with 412."""
        header = self.request.headers.get("If-Match")
        if header is None or header.strip() == "*":
            return None
        versions = set()
        for tag in header.split(","):
            tag = tag.strip()
            if tag.startswith('"v') and tag.endswith('"') and tag[2:-1].isascii():
                digits = tag[2:-1]
                if digits.isdigit() and len(digits) < 20:
                    versions.add(int(digits))
        return versions

    def create(self, request):
        record = services.create_virtual_mta(
            self.queryset.model, self.validated_body(partial=False)
        )
        return self.respond(record.pk)

    def assert_exists(self):
        """404 before 400: a PUT to a missing record is "not found". One cheap query, not the
        record with everything it would answer with."""
        self.lookup(self.queryset.model.objects.only("pk"), self.root_key)

    def update(self, request, pk):
        self.assert_exists()
        record = services.update_virtual_mta(
            self.queryset.model, int(pk), self.validated_body(partial=True), self.if_match()
        )
        return self.respond(record.pk)

    def destroy(self, request, pk):
        self.assert_exists()
        services.delete_virtual_mta(self.queryset.model, int(pk), self.if_match())
        return Response({})


@document_virtual_mta_viewset
class RelayServerViewSet(VirtualMtaViewSet):
    queryset = RelayServer.objects.select_related("redirect")
    serializer_class = RelayServerSerializer
    root_key, list_key = "relay_server", "relay_servers"


def _filter_ip(queryset, value):
    try:
        v.ipv4_dotted(value)
    except DjangoValidationError as error:
        raise InvalidRequest(f"ip {error.messages[0]}") from None
    return queryset.filter(ip=value)


@document_virtual_mta_viewset
class IpAddressViewSet(VirtualMtaViewSet):
    queryset = IpAddress.objects.select_related("redirect")
    serializer_class = IpAddressSerializer
    root_key, list_key = "ip_address", "ip_addresses"
    list_filters = {
        "name": lambda qs, value: qs.annotate(lname=Lower("name")).filter(lname=value.lower()),
        "ip": _filter_ip,
        "hostname": lambda qs, value: qs.filter(hostname__iexact=value),
    }


@document_virtual_mta_viewset
class RoutingRuleViewSet(VirtualMtaViewSet):
    # Targets answer {type, id, name}: only those columns of their VirtualMTA are read.
    _targets = DeliverThrough.objects.select_related("virtual_mta").only(
        *[f.name for f in DeliverThrough._meta.concrete_fields],
        "virtual_mta__type",
        "virtual_mta__name",
    )
    queryset = RoutingRule.objects.prefetch_related(
        Prefetch("deliver_through", _targets),
        Prefetch(
            "domain_overrides",
            DomainOverride.objects.prefetch_related(
                "domains", Prefetch("deliver_through", _targets)
            ),
        ),
    )
    serializer_class = RoutingRuleSerializer
    root_key, list_key = "routing_rule", "routing_rules"


@document_virtual_mtas
class VirtualMtasViewSet(GreenArrowView):
    """Every VirtualMTA whatever its type, what refers to one, and the server's default."""

    queryset = VirtualMta.objects.all()

    def list(self, request):
        return Response(
            paginate(
                self.queryset,
                self.params,
                "virtual_mtas",
                fields=("type", "id", "name"),
                counted=RecordCount.of(),
            )
        )

    @action(detail=True, url_path="used_by")
    def used_by(self, request, pk):
        vmta = self.lookup(self.queryset, "VirtualMTA")
        return Response(
            paginate_list(
                lambda offset, limit: references.referrers(vmta, offset, limit),
                self.params,
                "used_by",
            )
        )


@document_default_virtual_mta
class DefaultVirtualMtaViewSet(GreenArrowView):
    queryset = DefaultVirtualMta.objects.all()

    @staticmethod
    def answer(vmta):
        return Response({"virtual_mta": vmta.reference if vmta else None})

    def retrieve(self, request):
        return self.answer(services.get_default_virtual_mta())

    def update(self, request):
        field = ReferenceField(allow_null=True)
        value = self.root_body("virtual_mta", field.unknown_keys)
        try:
            ref = field.run_validation(value)
        except DRFValidationError as error:
            raise ValidationFailed(flatten_errors(error.detail, "virtual_mta")) from None
        return self.answer(services.set_default_virtual_mta(ref))
