import factory
from django.contrib.auth.models import Permission, User

from relays.models import (
    DeliverThrough,
    DomainOverride,
    IpAddress,
    OverrideDomain,
    RelayServer,
    RoutingRule,
)


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


class IpAddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IpAddress

    name = factory.Sequence(lambda n: f"ipaddr-{n}")
    ip = "10.0.0.28"
    hostname = "hostname-28.com"


class RoutingRuleFactory(factory.django.DjangoModelFactory):
    """targets=[(vmta, portion), ...] fills the default route."""

    class Meta:
        model = RoutingRule
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"rr-{n}")
    default_randomization_type = "random"

    @factory.post_generation
    def targets(self, create, value):
        for position, (vmta, portion) in enumerate(value or []):
            DeliverThrough.objects.create(
                rule=self, position=position, virtual_mta=vmta, portion_of_mail=portion
            )


def add_override(rule, domains, targets, randomization_type="random"):
    """Append a domain override with its domains and [(vmta, portion), ...] targets."""
    override = DomainOverride.objects.create(
        rule=rule, position=rule.domain_overrides.count(), randomization_type=randomization_type
    )
    for position, domain in enumerate(domains):
        OverrideDomain.objects.create(
            override=override, rule=rule, position=position, domain=domain
        )
    for position, (vmta, portion) in enumerate(targets):
        DeliverThrough.objects.create(
            rule=rule,
            override=override,
            position=position,
            virtual_mta=vmta,
            portion_of_mail=portion,
        )
    return override
