"""IP addresses, relay servers, routing rules and the default VirtualMTA in the admin, under the
same rules as the two APIs."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.forms.models import construct_instance
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from relays import audit, crypto, references, services
from relays import validators as v
from relays.admin.audited import AuditedAdmin, changes_since
from relays.admin.ip_addresses import DeliveryStatusFilter, IpDeliveryStatus
from relays.admin.mail_manager import RelayMailManagerFields, RelayTagInline
from relays.admin.probes import ProbeAction
from relays.admin.references import ReferencePanels, TargetField, link, referrer_link
from relays.errors import RelayError, Stale
from relays.models import AuditEntry, IpAddress, RelayServer, VirtualMta

# --- writes through the services -------------------------------------------------------------


class _DryRun(Exception):
    """Rolls back the service call that validates a form."""


def _integer_field(label, low, high, help_text):
    """A whole number in a range, refused with the API's message (no HTML min/max: the server
    says what is wrong, at the field)."""
    message = f"must be an integer from {low} to {high}"

    def in_range(value):
        if value is not None and not low <= value <= high:
            raise forms.ValidationError(message, code="range")

    return forms.IntegerField(
        label=label,
        help_text=help_text,
        validators=[in_range],
        error_messages={"invalid": message, "required": "is required"},
    )


class VirtualMtaForm(forms.ModelForm):
    """Validated and written by the same service as the APIs (relays.services): every rule,
    quota, loop check and message is theirs. Each message goes to the field its API path names,
    or above the form when it spans fields."""

    redirect = TargetField(
        VirtualMta._meta.get_field("redirect"),
        required=False,
        label="Redirect to",
        help_text="Delivery meant for this path is sent through that VirtualMTA instead: "
        "type a name to search.",
    )

    # The version of the record the page was opened on (relays.services refuses a save once
    # someone else wrote the record since: no silently reverted API change).
    opened_version = forms.IntegerField(
        widget=forms.HiddenInput,
        required=False,
        help_text="The version of the record this page was opened on.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["redirect"].exclude(self.instance.pk)
        if self.instance.pk is not None:
            self.fields["opened_version"].initial = self.instance.version

    def validate_unique(self):
        """The service checks the name across every type and names the holder."""

    def _post_clean(self):
        # The instance the admin works with; the model's rules are checked by the service's
        # dry run below, so they read as the API's. The dry run runs whatever the fields'
        # own checks found, on the fields that passed them: every problem of the form comes
        # back in one round trip, not the service's only once the fields are fixed.
        try:
            self.instance = construct_instance(
                self, self.instance, self._meta.fields, self._meta.exclude
            )
        except forms.ValidationError as error:
            self._update_errors(error)
        self._dry_run()

    def service_data(self):
        """The cleaned values as the services take them (a reference as an {id, name} hash)."""
        # Meta.fields of the form class itself (the admin's form factory adds read-only ones).
        data = {name: self.cleaned_data.get(name) for name in self.Meta.service_fields}
        if "redirect" in data:
            target = data["redirect"]
            data["redirect"] = None if target is None else {"id": target.pk, "name": None}
        return data

    def write(self, leave_out=()):
        """Create or update through the service (without the fields in `leave_out`: an update
        keeps their stored values); the stored record."""
        model = self._meta.model
        data = {k: val for k, val in self.service_data().items() if k not in leave_out}
        if self.instance.pk is None:
            return services.create_virtual_mta(model, data)
        version = self.cleaned_data.get("opened_version")
        return services.update_virtual_mta(
            model, self.instance.pk, data, None if version is None else {version}
        )

    def _dry_run(self):
        failed = set(self._errors)  # already said at their fields; left out of the dry run
        try:
            with transaction.atomic():
                self.write(leave_out=failed)
                raise _DryRun
        except _DryRun:
            pass
        except Stale as error:
            # Shown with what the other writes changed; the page now carries the current
            # version, so saving again is a deliberate overwrite of them.
            self.add_error(None, error.messages[0])
            current = type(self.instance).objects.values_list("version", flat=True)
            current = current.get(pk=self.instance.pk)
            opened = self.cleaned_data.get("opened_version")
            for change in changes_since(self.instance, opened, current):
                self.add_error(None, change)
            data = self.data.copy()
            data[self.add_prefix("opened_version")] = str(current)
            self.data = data
        except RelayError as error:
            # Each problem at the field it names, in the domain's words ("must start and end
            # with a letter or number" beside "HELO hostname"); one that spans fields, or names
            # one this form lacks, above the form, the field called by its label.
            labels = {name: str(field.label or name) for name, field in self.fields.items()}
            for problem in error.problems:
                if problem.field in failed:
                    continue  # a value left out: the field's own message says what is wrong
                if problem.field in self.fields:
                    self.add_error(problem.field, problem.text)
                else:
                    self.add_error(None, problem.sentence(labels))


class RelayServerForm(VirtualMtaForm):
    """The stored SMTP password is write-only here: the page never contains it. A blank
    password keeps the stored one; "clear credentials" removes username and password."""

    destination_port = _integer_field(
        "Destination port", 1, 65535, "The SMTP port of the destination, e.g. 25 or 587."
    )
    destination_password = forms.CharField(
        label="SMTP password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: leave blank to keep the stored password.",
    )
    clear_credentials = forms.BooleanField(
        required=False,
        label="Clear stored credentials",
        help_text="Remove the stored SMTP username and password (no SMTP authentication).",
    )
    max_concurrent_connections = _integer_field(
        "Max concurrent connections",
        0,
        v.INT32_MAX,
        "Connections open to the destination at once; 0 = unlimited.",
    )
    max_messages_per_hour = _integer_field(
        "Max messages per hour", 0, v.INT32_MAX, "Messages sent per hour; 0 = unlimited."
    )
    secret_arn = forms.CharField(
        label="Secret ARN",
        required=False,
        empty_value=None,
        max_length=2048,
        validators=[v.secret_arn_pattern],
        help_text="Mail Manager: an AWS Secrets Manager ARN that holds the SMTP credentials "
        "instead of a stored username and password (one or the other, not both).",
    )

    class Meta:
        model = RelayServer
        fields = service_fields = [
            "name",
            "source_ip",
            "source_hostname",
            "destination_hostname",
            "destination_port",
            "destination_username",
            "destination_password",
            "max_concurrent_connections",
            "max_messages_per_hour",
            "redirect",
            "secret_arn",
        ]
        labels = {
            "source_ip": "Source IP",
            "source_hostname": "HELO hostname",
            "destination_hostname": "Destination hostname",
            "destination_username": "SMTP username",
        }
        help_texts = {
            "name": "Unique across IP addresses, relay servers and routing rules (any case); "
            "not a whole number.",
            "source_ip": "The IPv4 address of this server that connects to the destination.",
            "source_hostname": "The name this server announces in HELO/EHLO.",
            "destination_hostname": "The SMTP server the mail is handed to.",
            "destination_username": "Blank (and no password): no SMTP authentication.",
        }

    def password_typed(self):
        """Whether the operator typed a password in this submission (blank keeps the stored)."""
        return bool(self.data.get(self.add_prefix("destination_password")))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_credentials"):
            if self.password_typed() or "destination_username" in self.changed_data:
                self.add_error(
                    "clear_credentials",
                    "Clear stored credentials, or give new ones: not both at once.",
                )
            cleaned["destination_username"] = None
            cleaned["destination_password"] = None
        elif not cleaned.get("destination_password"):
            cleaned["destination_password"] = self.instance.destination_password
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        # A password field is never sent back to the browser (the page never contains one): a
        # form that comes back with an error says so at the field, rather than letting the next
        # save go through without the password the operator typed.
        if self._errors and self.password_typed() and "destination_password" not in self._errors:
            self.add_error(
                "destination_password",
                "Type the password again: it is not sent back with a form that has errors.",
            )

    def service_data(self):
        """What the operator wrote: a blank password, and a username left as it was, are not
        given again, so that moving the relay drops them (credentials are bound to their
        destination, relays.services) unless typed anew."""
        data = super().service_data()
        if self.instance.pk is not None and not self.cleaned_data.get("clear_credentials"):
            if not self.password_typed():
                data.pop("destination_password")
            if "destination_username" not in self.changed_data:
                data.pop("destination_username")
        return data


class IpAddressForm(VirtualMtaForm):
    max_concurrent_connections = _integer_field(
        "Max concurrent connections",
        0,
        v.INT32_MAX,
        "Per recipient domain, by default; 0 = unlimited.",
    )
    max_messages_per_hour = _integer_field(
        "Max messages per hour", 0, v.INT32_MAX, "Per recipient domain, by default; 0 = unlimited."
    )

    class Meta:
        model = IpAddress
        fields = service_fields = [
            "name",
            "ip",
            "hostname",
            "delivery_paused",
            "max_concurrent_connections",
            "max_messages_per_hour",
            "redirect",
        ]
        help_texts = {
            "name": "Unique across IP addresses, relay servers and routing rules (any case); "
            "not a whole number.",
            "ip": "An IPv4 address of this server that mail is sent from.",
            "hostname": "The name this server announces in HELO/EHLO from this address.",
            "delivery_paused": "Every delivery through this address is deferred while paused "
            "(the pause wins over a redirect).",
        }


class _Refused(Exception):
    """A service refused a write the page had checked: a concurrent write came in between."""

    def __init__(self, error):
        super().__init__(*error.messages)
        self.messages = error.messages


class ServiceWrites(AuditedAdmin):
    """Adds, changes and deletes through relays.services inside `audit.acting("admin")`: the
    services audit them, once.

    The form's check (a dry run of the service) and the write are two transactions: a
    concurrent write in between (a name taken, a new referrer) makes the service refuse. The
    page is then shown again, its check now seeing the conflict; never a 500."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            try:
                return super().changeform_view(request, object_id, form_url, extra_context)
            except _Refused:
                pass
            try:
                return super().changeform_view(request, object_id, form_url, extra_context)
            except _Refused as refused:
                return self._refused(request, refused, request.path)
        except crypto.UndecryptableSecret as error:
            # Stored under a key this server lacks (relays.checks names the fix): the page
            # cannot show the record, but says why, and its delete page still works.
            self.message_user(request, f"{error} It can still be deleted.", messages.ERROR)
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
            )

    def delete_view(self, request, object_id, extra_context=None):
        request.relays_without_secrets = True  # see get_queryset
        try:
            return super().delete_view(request, object_id, extra_context)
        except _Refused as refused:
            return self._refused(request, refused, request.path)

    def get_queryset(self, request):
        records = super().get_queryset(request)
        if getattr(request, "relays_without_secrets", False):
            # The list and the delete page read no credential (whether one is stored is an
            # annotation): they work whatever key it was stored under, and decrypt nothing.
            records = crypto.without_secrets(records)
        return records

    def changelist_view(self, request, extra_context=None):
        request.relays_without_secrets = True  # see get_queryset
        try:
            return super().changelist_view(request, extra_context)
        except _Refused as refused:  # the bulk delete action
            return self._refused(request, refused, request.get_full_path())

    def _refused(self, request, refused, url):
        for message in refused.messages:
            self.message_user(request, f"Nothing was changed: {message}", messages.ERROR)
        return HttpResponseRedirect(url)

    def save_model(self, request, obj, form, change):
        try:
            with audit.acting("admin", request):
                saved = form.write()
        except RelayError as error:
            raise _Refused(error) from error
        if getattr(saved, "credentials_dropped", False):
            self.message_user(
                request,
                "The destination changed, so the stored SMTP username and password were "
                "removed: credentials are bound to their destination. Enter them again to "
                "authenticate to the new one.",
                messages.WARNING,
            )
        # The admin goes on with `obj` (the inlines, the log, the redirect to the saved record).
        for field in obj._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding, obj._state.db = False, saved._state.db

    def delete_model(self, request, obj):
        try:
            with audit.acting("admin", request):
                services.delete_virtual_mta(type(obj), obj.pk)
        except RelayError as error:
            raise _Refused(error) from error

    def get_deleted_objects(self, objs, request):
        """Django's list of what goes with the record, and, as "protected", every referrer in
        the API's words (a refused delete), each linked."""
        deleted, counts, perms_needed, _ = super().get_deleted_objects(objs, request)
        protected = []
        for obj in objs:
            total, named = references.referrers(obj, limit=v.MAX_REFERRERS_NAMED)
            protected += [referrer_link(obj, r) for r in named]
            if total > len(named):
                protected.append(f"and {total - len(named)} more")
        if protected:
            # The delete is refused for the referrers; what it would cascade to is moot (the
            # default VirtualMTA setting has no delete permission).
            perms_needed = set()
        return deleted, counts, perms_needed, protected


class VirtualMtaAdmin(ServiceWrites):
    """What IP addresses and relay servers share in the admin."""

    list_select_related = ["redirect"]
    ordering = ["id"]

    @admin.display(description="Throttle limits")
    def throttle_limits(self, vmta):
        """Short, so the list fits a laptop's width: "20 conn, 36000/h", "unlimited"."""
        limits = []
        if vmta.max_concurrent_connections:
            limits.append(f"{vmta.max_concurrent_connections} conn")
        if vmta.max_messages_per_hour:
            limits.append(f"{vmta.max_messages_per_hour}/h")
        return ", ".join(limits) or "unlimited"

    @admin.display(description="Updated", ordering="updated_at")
    def updated(self, vmta):
        return timezone.localtime(vmta.updated_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Redirect", ordering="redirect__name")
    def redirect_link(self, vmta):
        return "-" if vmta.redirect is None else link(vmta.redirect)


class ThrottledFilter(admin.SimpleListFilter):
    title = "throttled"
    parameter_name = "throttled"

    def lookups(self, request, model_admin):
        return [("yes", "Throttled"), ("no", "Unlimited")]

    def queryset(self, request, queryset):
        limited = Q(max_concurrent_connections__gt=0) | Q(max_messages_per_hour__gt=0)
        if self.value() == "yes":
            return queryset.filter(limited)
        if self.value() == "no":
            return queryset.exclude(limited)
        return queryset


class HasRedirectFilter(admin.SimpleListFilter):
    title = "redirect"
    parameter_name = "redirected"

    def lookups(self, request, model_admin):
        return [("yes", "Redirected"), ("no", "Not redirected")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(redirect__isnull=self.value() == "no")
        return queryset


class CreatedThroughFilter(admin.SimpleListFilter):
    """Which door made the relay, from its "create" audit entry (records older than the audit
    log have none, and match no door)."""

    title = "created through"
    parameter_name = "created_through"
    DOORS = [
        ("mailmanager", "Mail Manager API"),
        ("greenarrow", "GreenArrow API"),
        ("admin", "the admin"),
        ("command", "a command"),
    ]

    def lookups(self, request, model_admin):
        return self.DOORS

    def queryset(self, request, queryset):
        if self.value() not in dict(self.DOORS):
            return queryset
        created = AuditEntry.objects.filter(
            record_type=VirtualMta.Type.RELAY_SERVER,
            record_id=OuterRef("pk"),
            action=AuditEntry.Action.CREATE,
            facade=self.value(),
        )
        return queryset.filter(Exists(created))


NO_AUTH, STORED, SECRET = "none", "stored credentials", "secret ARN"


class AuthenticationFilter(admin.SimpleListFilter):
    title = "authentication"
    parameter_name = "authentication"

    def lookups(self, request, model_admin):
        return [("none", NO_AUTH), ("stored", STORED), ("secret", SECRET)]

    def queryset(self, request, queryset):
        # Encrypted values are never empty ciphertext, so null is "none stored".
        stored = Q(destination_username__isnull=False) | Q(destination_password__isnull=False)
        if self.value() == "secret":
            return queryset.filter(secret_arn__isnull=False).exclude(secret_arn="")
        if self.value() == "stored":
            return queryset.filter(stored)
        if self.value() == "none":
            return queryset.exclude(stored).filter(Q(secret_arn__isnull=True) | Q(secret_arn=""))
        return queryset


@admin.register(RelayServer)
class RelayServerAdmin(ProbeAction, ReferencePanels, RelayMailManagerFields, VirtualMtaAdmin):
    form = RelayServerForm
    inlines = [RelayTagInline]
    actions = ["probe_relays"]
    list_display = [
        "name",
        "destination",
        "source",
        "authentication",
        "throttle_limits",
        "redirect_link",
        "updated",
    ]
    list_display_links = ["name"]
    list_filter = [HasRedirectFilter, AuthenticationFilter, CreatedThroughFilter, ThrottledFilter]
    search_fields = [
        "name",
        "destination_hostname",
        "source_hostname",
        "source_ip",
        "=relay_id",
    ]
    fieldsets = [
        (None, {"fields": ["name", "opened_version"]}),
        ("Source IP", {"fields": ["source_ip", "source_hostname"]}),
        ("Destination", {"fields": ["destination_hostname", "destination_port"]}),
        (
            "Authentication",
            {
                "fields": [
                    "destination_username",
                    "destination_password",
                    "clear_credentials",
                    "secret_arn",
                ],
                "description": "None, a stored username and password, or a Secret ARN "
                "(Mail Manager): one source of SMTP credentials at most.",
            },
        ),
        ("Throttle limits", {"fields": ["max_concurrent_connections", "max_messages_per_hour"]}),
        ("Redirect", {"fields": ["redirect"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        """Who may not change the relay reads its page with every field as text: the password
        is then "set" or "not set", never its value (whatever other permission they hold)."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:  # nothing stored to clear yet
            shown = {"clear_credentials": None}
        elif self.has_change_permission(request, obj):
            return fieldsets
        else:
            shown = {"destination_password": "stored_password", "clear_credentials": None}
        return [
            (
                title,
                {
                    **options,
                    "fields": [shown.get(f, f) for f in options["fields"] if shown.get(f, f)],
                },
            )
            for title, options in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "stored_password"]

    @admin.display(description="SMTP password")
    def stored_password(self, relay):
        return "set" if crypto.stored(relay, "destination_password") else "not set"

    @admin.display(description="Destination", ordering="destination_hostname")
    def destination(self, relay):
        return f"{relay.destination_hostname}:{relay.destination_port}"

    @admin.display(description="Source IP / HELO", ordering="source_ip")
    def source(self, relay):
        return f"{relay.source_ip} / {relay.source_hostname}"

    @admin.display(description="Authentication")
    def authentication(self, relay):
        if relay.secret_arn:
            return SECRET
        stored = crypto.stored(relay, "destination_username") or crypto.stored(
            relay, "destination_password"
        )
        return STORED if stored else NO_AUTH


@admin.register(IpAddress)
class IpAddressAdmin(ReferencePanels, IpDeliveryStatus, VirtualMtaAdmin):
    form = IpAddressForm
    list_display = [
        "name",
        "ip",
        "hostname",
        "delivery_status",
        "throttle_limits",
        "redirect_link",
        "updated",
    ]
    list_filter = [DeliveryStatusFilter, HasRedirectFilter, ThrottledFilter]
    search_fields = ["name", "ip", "hostname"]
    fieldsets = [
        (None, {"fields": ["name", "opened_version"]}),
        ("Address", {"fields": ["ip", "hostname"]}),
        ("Delivery", {"fields": ["delivery_paused"]}),
        (
            "Throttle limits",
            {
                "fields": ["max_concurrent_connections", "max_messages_per_hour"],
                "description": "The default for each recipient domain.",
            },
        ),
        ("Redirect", {"fields": ["redirect"]}),
    ]
