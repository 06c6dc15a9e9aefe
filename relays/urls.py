from rest_framework.routers import SimpleRouter

from relays import views

router = SimpleRouter(trailing_slash=False)
router.register("relay_servers", views.RelayServerViewSet, basename="relay_server")

urlpatterns = router.urls
