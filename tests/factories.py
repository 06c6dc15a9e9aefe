import factory
from django.contrib.auth.models import Permission, User

from relays.models import RelayServer


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")
    is_staff = True
    is_active = True

    @factory.post_generation
    def perms(self, create, codenames):
        """perms=["view_relayserver", ...] grants those permissions of the relays app."""
        if codenames:
            self.user_permissions.set(
                Permission.objects.filter(content_type__app_label="relays", codename__in=codenames)
            )


class RelayServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RelayServer

    name = factory.Sequence(lambda n: f"relay-{n}")
    source_ip = "127.0.0.2"
    source_hostname = "outgoing-hostname.com"
    destination_hostname = "destination-hostname.com"
    destination_port = 25
    destination_username = None
    destination_password = None
    max_concurrent_connections = 2
    max_messages_per_hour = 120

    class Params:
        with_auth = factory.Trait(
            destination_username="myusername", destination_password="mysecret"
        )
