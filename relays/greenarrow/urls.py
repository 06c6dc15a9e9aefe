from django.urls import path
from rest_framework.routers import SimpleRouter

from relays.greenarrow import views

router = SimpleRouter(trailing_slash=False)
router.register("relay_servers", views.RelayServerViewSet, basename="relay_server")
router.register("ip_addresses", views.IpAddressViewSet, basename="ip_address")
router.register("routing_rules", views.RoutingRuleViewSet, basename="routing_rule")
router.register("virtual_mtas", views.VirtualMtasViewSet, basename="virtual_mta")

default = views.DefaultVirtualMtaViewSet.as_view({"get": "retrieve", "put": "update"})

urlpatterns = [path("virtual_mtas/default", default, name="virtual_mta-default"), *router.urls]
