"""References in the admin: a VirtualMTA (a redirect, a routing-rule target) is picked with an
autocomplete that searches by name and shows each record's type, never a <select> of every
record; every VirtualMTA page shows what uses it ("Used by") and where its mail really goes
("Effective delivery"); a refused delete names each referrer with a link."""

from django.contrib import admin
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.forms import ModelChoiceField
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join

from relays import references, resolution
from relays import validators as v
from relays.models import VirtualMta

# The admin page of each type (the `type` column names it).
_ADMIN_MODEL = {
    "ip_address": "ipaddress",
    "relay_server": "relayserver",
    "routing_rule": "routingrule",
}
_TYPES = list(_ADMIN_MODEL.values())


def label(vmta):
    """How a picker names a VirtualMTA: its name and its type."""
    return f"{vmta.name} ({vmta.get_type_display()})"


def change_url(vmta_type, pk):
    return reverse(f"admin:relays_{_ADMIN_MODEL[vmta_type]}_change", args=[pk])


def link(vmta):
    """The record's name, linked to its page, and its type."""
    return format_html(
        '<a href="{}">{}</a> ({})',
        change_url(vmta.type, vmta.pk),
        vmta.name,
        vmta.get_type_display(),
    )


# --- the picker ------------------------------------------------------------------------------


class TargetSearch(AutocompleteJsonView):
    """The picker's search: by name (VirtualMtaLookup.search_fields), answered as "name (type)",
    without the record being edited (`exclude`), 20 at a time."""

    def serialize_result(self, obj, to_field_name):
        return {"id": str(obj.pk), "text": label(obj)}

    def get_queryset(self):
        found = super().get_queryset()
        exclude = self.request.GET.get("exclude", "")
        if v.is_record_id(exclude):
            found = found.exclude(pk=int(exclude))
        return found


@admin.register(VirtualMta)
class VirtualMtaLookup(admin.ModelAdmin):
    """Not a page of its own (the three types have theirs): only the pickers' search."""

    search_fields = ["name"]
    ordering = ["name"]

    def get_urls(self):
        search = TargetSearch.as_view(admin_site=self.admin_site)
        return [
            path("search/", self.admin_site.admin_view(search), name="relays_virtualmta_search")
        ]

    def get_model_perms(self, request):
        return {}  # not listed on the index

    def has_view_permission(self, request, obj=None):
        # Whoever may see or edit any type may look names up.
        user = request.user
        return any(
            user.has_perm(f"relays.{action}_{model}")
            for model in _TYPES
            for action in ("view", "change")
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting a record deletes its VirtualMta row too, which the delete page asks about.
        return obj is not None and request.user.has_perm(f"relays.delete_{_ADMIN_MODEL[obj.type]}")


class TargetPicker(AutocompleteSelect):
    """Django's autocomplete (select2, shipped with the admin) over TargetSearch. Only the
    selected record is rendered into the page, whatever the number of VirtualMTAs."""

    def __init__(self, source_field, exclude=None):
        super().__init__(source_field, admin.site)
        self.exclude = exclude
        # {str(id): VirtualMta} read once for a page of many pickers (see `preload`).
        self.known = None

    def get_url(self):
        url = reverse("admin:relays_virtualmta_search")
        return f"{url}?exclude={self.exclude}" if self.exclude else url

    def optgroups(self, name, value, attr=None):
        # A typed value no record can have shows as nothing chosen (the form says why).
        value = [x for x in value if x and v.is_record_id(str(x))]
        chosen = [self.known.get(str(v)) for v in value if v] if self.known is not None else [None]
        if None in chosen:
            return super().optgroups(name, value, attr)
        options = [] if self.is_required else [self.create_option(name, "", "", False, 0)]
        options += [
            self.create_option(name, str(obj.pk), label(obj), True, i)
            for i, obj in enumerate(chosen, start=1)
        ]
        return [(None, options, 0)]


class TargetField(ModelChoiceField):
    """A VirtualMTA of any type, picked by name. `source_field` is the model field the value is
    stored in (the search checks it exists)."""

    def __init__(self, source_field, **kwargs):
        super().__init__(VirtualMta.objects.all(), widget=TargetPicker(source_field), **kwargs)

    def label_from_instance(self, obj):
        return label(obj)

    def to_python(self, value):
        # An id no record can have is no choice (SQLite could not even look it up).
        if value not in self.empty_values and not v.is_record_id(str(value)):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)

    def exclude(self, pk):
        """Leave the record being edited out of the search."""
        self.widget.exclude = pk


def preload(bound_fields):
    """Read the records that many pickers (bound fields of TargetField) show in one query,
    instead of one per picker."""
    bound_fields = list(bound_fields)
    ids = {str(f.value()) for f in bound_fields if f.value() is not None}
    ids = {i for i in ids if v.is_record_id(i)}
    known = {str(vmta.pk): vmta for vmta in VirtualMta.objects.filter(pk__in=ids)}
    for bound in bound_fields:
        bound.field.widget.known = known


# --- what uses a record, where its mail goes ---------------------------------------------------


def referrer_link(vmta, referrer):
    """The API's sentence for one referrer (relays.references.referrer_sentence), its holder
    linked to its admin page."""
    if referrer["type"] == "default_virtual_mta":
        try:
            url = reverse("admin:relays_defaultvirtualmta_change", args=[1])
        except NoReverseMatch:  # pragma: no cover
            return references.referrer_sentence(vmta, referrer)
        return format_html(
            '{} is the <a href="{}">default VirtualMTA</a>', references.describe(vmta), url
        )
    return format_html(
        '{} is used by <a href="{}">{} {} ({})</a> as its {}',
        references.describe(vmta),
        change_url(referrer["type"], referrer["id"]),
        referrer["type"],
        referrer["id"],
        referrer["name"],
        referrer["attribute"],
    )


def _used_by_item(referrer):
    if referrer["type"] == "default_virtual_mta":
        return format_html(
            'the <a href="{}">default VirtualMTA</a>',
            reverse("admin:relays_defaultvirtualmta_change", args=[1]),
        )
    return format_html(
        '<a href="{}">{}</a> ({}) as its <code>{}</code>',
        change_url(referrer["type"], referrer["id"]),
        referrer["name"],
        VirtualMta.Type(referrer["type"]).label,
        referrer["attribute"],
    )


def _paths_table(paths):
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                link(p.virtual_mta),
                f"{p.share:.1%}",
                "paused: mail waits"
                if p.paused
                else (f"held: {p.held}; mail waits" if p.held else "delivering"),
            )
            for p in paths
        ),
    )
    return format_html(
        '<table class="delivery-paths"><thead><tr><th>Final path</th><th>Share</th>'
        "<th>Status</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def example_domain(pattern):
    """A recipient domain that `pattern` (a domain override's) matches."""
    if pattern.startswith("*."):
        return "mail." + pattern[2:]
    return pattern.removeprefix("[*.]")


class ReferencePanels:
    """For the admin of each type: "Used by" and "Effective delivery" on the change page."""

    PANELS = ["used_by", "effective_delivery"]
    # A routing rule's overrides shown in "Effective delivery" (each one walks its paths).
    OVERRIDES_SHOWN = 10

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + self.PANELS if obj is not None else fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (name, {**options, "fields": [f for f in options["fields"] if f not in self.PANELS]})
            for name, options in super().get_fieldsets(request, obj)
        ]
        if obj is None:
            return fieldsets
        return [*fieldsets, ("References", {"fields": self.PANELS})]

    @admin.display(description="Used by")
    def used_by(self, obj):
        total, named = references.referrers(obj, limit=v.MAX_REFERRERS_NAMED)
        if not total:
            return "Nothing refers to it: it can be deleted."
        items = format_html_join("", "<li>{}</li>", ((_used_by_item(r),) for r in named))
        more = f"and {total - len(named)} more" if total > len(named) else ""
        return format_html('<ul class="used-by">{}</ul>{}', items, more)

    @admin.display(description="Effective delivery")
    def effective_delivery(self, obj):
        """The final paths after redirects and routing rules (relays.resolution); for a routing
        rule, per route: the default, then each domain override for an example domain."""
        routes = [(None, None)]
        overrides = getattr(obj, "domain_overrides", None)
        if overrides is not None:
            for override in overrides.prefetch_related("domains")[: self.OVERRIDES_SHOWN]:
                if override.domain_list:
                    routes.append((override, example_domain(override.domain_list[0])))
        store = resolution.Store()  # the routes' walks read each record once
        if len(routes) == 1:
            return _paths_table(resolution.delivery_paths(obj, store=store))
        parts = []
        for override, domain in routes:
            title = (
                "Any other domain (the default route)"
                if override is None
                else f"Mail to {domain} (domain override {override.position + 1})"
            )
            parts.append((title, _paths_table(resolution.delivery_paths(obj, domain, store))))
        return format_html_join("", "<p><strong>{}</strong></p>{}", parts)
