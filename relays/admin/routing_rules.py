"""Routing rules edited in the admin: the default route and the domain overrides (domains,
randomization, targets with their weights and shares), added, removed and reordered, saved
through the same service as the GreenArrow API's PUT (relays.services), which keeps an edited
override's id as the API does.

A route's targets nest inside each override, which the admin's inlines cannot save through a
service; so the rule's add and change pages are one editor: a form for the rule, a formset per
route, each written as the API's request data and checked by the service as a whole.

A rule may hold 1,000 overrides of 100 targets: the editor shows them a page at a time
(`?overrides_page=N`, see `page_starts`), and a save replaces only the overrides its page
showed, every other one kept as stored (relays.services.Routes.Window, which refuses the save
when those overrides moved since the page was read, rather than write over others).
"""

import re
from bisect import bisect_right

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch
from django.forms.formsets import DELETION_FIELD_NAME
from django.forms.utils import ErrorDict
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from relays import audit, services
from relays import validators as v
from relays.admin.references import ReferencePanels, TargetField, link, preload
from relays.admin.virtual_mtas import VirtualMtaAdmin
from relays.errors import RelayError
from relays.models import DeliverThrough, RandomizationType, RoutingRule

RANDOMIZATION_HELP = (
    "random: a target per delivery attempt; message_constant: the same target for every "
    "recipient of a message; email_address_constant: the same target for each recipient address."
)


def _randomization():
    return forms.ChoiceField(
        label="Randomization",
        choices=RandomizationType.choices,
        initial=RandomizationType.RANDOM,
        help_text=RANDOMIZATION_HELP,
    )


class RuleForm(forms.Form):
    name = forms.CharField(
        strip=False,
        help_text="Unique across IP addresses, relay servers and routing rules (any case); "
        "not a whole number.",
    )
    default_randomization_type = _randomization()


class TargetForm(forms.Form):
    # No help texts: a row shows none (the route's description says what a portion is), and
    # each would add an aria-describedby to every one of up to 2,000 rows of a page.
    virtual_mta = TargetField(
        DeliverThrough._meta.get_field("virtual_mta"), label="Deliver through"
    )
    portion_of_mail = forms.FloatField(
        label="Portion", validators=[v.portion], error_messages={"invalid": v.PORTION_MESSAGE}
    )


class Route(forms.BaseFormSet):
    """One route's targets, in order; blank extra rows are ignored."""

    def targets(self):
        """The targets as the service takes them, each with the form it came from."""
        return [
            (
                {
                    "virtual_mta": {"id": form.cleaned_data["virtual_mta"].pk, "name": None},
                    "portion_of_mail": form.cleaned_data["portion_of_mail"],
                },
                form,
            )
            for form in self.ordered_forms
        ]

    def shares(self):
        """Each row's share of the route, from the values shown (saved or just submitted)."""
        portions = [_portion(form) for form in self.forms]
        total = sum(portions)
        return [f"{p / total:.1%}" if total and p else "" for p in portions]

    def rows(self):
        return list(zip(self.forms, self.shares(), strict=True))


def _portion(form):
    """The portion a row shows, 0 when it is deleted or not a valid portion."""
    if form[DELETION_FIELD_NAME].value() is True:
        return 0
    try:
        portion = float(form["portion_of_mail"].value())
        v.portion(portion)
    except (TypeError, ValueError, forms.ValidationError):
        return 0
    return portion


def _ordered_list(form, formset, extra, limit):
    """Rows that can be added, removed and reordered; more than `limit` is refused (a forged
    form count too), as the API refuses a longer list."""
    return forms.formset_factory(
        form,
        formset=formset,
        extra=extra,
        can_order=True,
        can_delete=True,
        max_num=limit,
        absolute_max=limit,
        validate_max=True,
    )


TargetFormSet = _ordered_list(TargetForm, Route, 2, v.MAX_TARGETS_PER_ROUTE)

_DOMAIN_SEPARATORS = re.compile(r"[\s,]+")


class OverrideForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)
    domains = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text="One per line (or separated by commas): example.com (that domain), "
        "[*.]example.com (it and its subdomains), *.example.com (its subdomains only).",
    )
    randomization_type = _randomization()

    def clean_domains(self):
        domains = [d for d in _DOMAIN_SEPARATORS.split(self.cleaned_data["domains"]) if d]
        if len(domains) > v.MAX_DOMAINS_PER_OVERRIDE:
            raise forms.ValidationError(f"must have at most {v.MAX_DOMAINS_PER_OVERRIDE} items")
        problems = []
        for domain in domains:
            try:
                v.domain_pattern(domain)
            except forms.ValidationError as error:
                problems += [f"{domain}: {m}" for m in error.messages]
        if problems:
            raise forms.ValidationError(problems)
        return domains


class Overrides(forms.BaseFormSet):
    """The domain overrides, in order; each has its own route (a nested TargetFormSet)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        initial = self.initial or []
        self.routes = [
            TargetFormSet(
                self.data if self.is_bound else None,
                prefix=f"{self.prefix}-{i}-targets",
                initial=initial[i]["targets"] if i < len(initial) else None,
            )
            for i in range(self.total_form_count())
        ]

    def _construct_form(self, i, **kwargs):
        # Every override shown is one the operator asked for ("Add a domain override"): a blank
        # one is an error, not silently dropped with the targets typed into it.
        kwargs["empty_permitted"] = False
        return super()._construct_form(i, **kwargs)

    def is_valid(self):
        routes = [route.is_valid() for route in self.kept_routes()]
        return super().is_valid() and all(routes)

    def kept_routes(self):
        """The routes of the overrides not deleted (a deleted override's route is not checked)."""
        kept = []
        for form, route in zip(self.forms, self.routes, strict=True):
            form.is_valid()  # fills cleaned_data, which says whether it is deleted
            if not self._should_delete_form(form):
                kept.append(route)
        return kept

    def overrides(self):
        """The overrides as the service takes them: (data, form, route) in their new order."""
        found = []
        for form in self.ordered_forms:
            route = self.routes[self.forms.index(form)]
            data = {
                "id": form.cleaned_data.get("id"),
                "domain_list": form.cleaned_data["domains"],
                "randomization_type": form.cleaned_data["randomization_type"],
                "deliver_through": [target for target, _ in route.targets()],
            }
            found.append((data, form, route))
        return found

    def blocks(self):
        return list(zip(self.forms, self.routes, strict=True))


OverrideFormSet = _ordered_list(OverrideForm, Overrides, 0, v.MAX_OVERRIDES_PER_RULE)

# A page of the editor holds at most OVERRIDES_PER_PAGE domain overrides and, unless one
# override alone has more, TARGET_ROWS_PER_PAGE targets: about 500 KB at most, where a rule of
# 1,000 overrides of 20 targets was one page of 27 MB.
OVERRIDES_PER_PAGE = 20
TARGET_ROWS_PER_PAGE = 400
PAGE = "overrides_page"


def page_starts(sizes):
    """Where each page starts in the list of overrides, given each override's number of
    targets, in order; [0] when all fit on one page (or there are none)."""
    starts, count, rows = [0], 0, 0
    for i, size in enumerate(sizes):
        if count == OVERRIDES_PER_PAGE or (count and rows + size > TARGET_ROWS_PER_PAGE):
            starts.append(i)
            count, rows = 0, 0
        count, rows = count + 1, rows + size
    return starts


class WindowForm(forms.Form):
    """Which overrides the page shows: where they start in the rule's list and their ids as
    read, so that the save replaces those and keeps the others (relays.services.Routes.Window)."""

    start = forms.IntegerField(min_value=0, max_value=v.MAX_OVERRIDES_PER_RULE)
    shown = forms.CharField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="window", **kwargs)
        for field in self.fields.values():
            field.widget = forms.HiddenInput()
            field.error_messages["required"] = "The page was not sent whole: open it again."

    def clean_shown(self):
        ids = [i for i in self.cleaned_data["shown"].split(",") if i]
        if len(ids) > OVERRIDES_PER_PAGE or not all(v.is_record_id(i) for i in ids):
            raise forms.ValidationError("The page was not sent whole: open it again.")
        return [int(i) for i in ids]


ADD_OVERRIDE, ADD_TARGETS = "_add_override", "_add_targets"
ROWS_ADDED = 3
_PATH = re.compile(
    r"^(?:default\.deliver_through|domain_overrides\[(\d+)\](?:\.(\w+))?)(?:\[(\d+)\])?"
)


class RuleEditor:
    """The rule form, the default route and a page of the overrides (all of them for a new
    rule), written through the service.

    `page` (1-based, from the URL) picks the overrides shown; a posted page says itself which
    it showed (`window`)."""

    def __init__(self, rule, data=None, page=1):
        self.rule = rule
        self.adding_rows = data is not None and (ADD_OVERRIDE in data or ADD_TARGETS in data)
        if self.adding_rows:
            data = _more_rows(data)
        sizes = []
        if rule is not None:
            targets = rule.domain_overrides.annotate(targets=Count("deliver_through"))
            sizes = list(targets.values_list("targets", flat=True))
        self.total, self.starts = len(sizes), page_starts(sizes)
        self.pages = len(self.starts)
        page = min(max(page, 1), self.pages)
        self.start = self.starts[page - 1]
        end = self.starts[page] if page < self.pages else self.total
        self.window, initial = None, {}
        if rule is not None and data is not None:
            self.window = WindowForm(data)
            if self.window.is_valid():  # the page posted says which overrides it showed
                self.start = self.window.cleaned_data["start"]
                end = self.start + len(self.window.cleaned_data["shown"])
            initial = _initial(rule, self.start, end)
        elif rule is not None:
            initial = _initial(rule, self.start, end)
            shown = ",".join(str(o["id"]) for o in initial["overrides"])
            self.window = WindowForm(initial={"start": self.start, "shown": shown})
        self.page = bisect_right(self.starts, self.start)
        self.form = RuleForm(data, initial=initial.get("rule"))
        self.default = TargetFormSet(data, prefix="default", initial=initial.get("default"))
        self.overrides = OverrideFormSet(data, prefix="overrides", initial=initial.get("overrides"))
        if self.adding_rows:
            self._quiet()
        exclude = rule.pk if rule is not None else None
        pickers = [
            form["virtual_mta"]
            for route in [self.default, *self.overrides.routes]
            for form in route
        ]
        for picker in pickers:
            picker.field.exclude(exclude)
        preload(pickers)

    def _quiet(self):
        """Show what was typed, without errors: the page only grew a row, nothing was saved."""
        for formset in [self.default, self.overrides, *self.overrides.routes]:
            formset._errors, formset._non_form_errors = [], formset.error_class()
            for form in formset.forms:
                form._errors = ErrorDict()
        self.form._errors = ErrorDict()

    @property
    def media(self):
        return self.default.media + self.form.media

    def disable(self):
        """Read-only: for a user who may view but not change."""
        for form in [self.form, *self.default, *self.overrides]:
            for field in form.fields.values():
                field.disabled = True
        for route in self.overrides.routes:
            for form in route:
                for field in form.fields.values():
                    field.disabled = True

    def is_valid(self):
        valid = [self.form.is_valid(), self.default.is_valid(), self.overrides.is_valid()]
        if self.window is not None:
            valid.append(self.window.is_valid())
        return all(valid)

    def window_errors(self):
        """Why the page's own record of what it showed was refused (a forged or cut post)."""
        if self.window is None or not self.window.is_bound:
            return []
        return sorted({m for messages in self.window.errors.values() for m in messages})

    def pager(self):
        """The page numbers to link to, around the page shown, None where some are left out."""
        if self.pages == 1:
            return []
        wanted = sorted(
            {1, self.page - 1, self.page, self.page + 1, self.pages} - {0, self.pages + 1}
        )
        numbers = []
        for n in wanted:
            if numbers and n > numbers[-1] + 1:
                numbers.append(None)
            numbers.append(n)
        return numbers

    @property
    def shown_range(self):
        """(first, last) override numbers on the page (1-based), as the headings count."""
        return self.start + 1, self.start + len(self.overrides.forms)

    def save(self):
        """Create or update through the service (which audits); the stored rule. A refusal
        (RelayError) puts each message where its API path points."""
        self._overrides = self.overrides.overrides()
        self._default = self.default.targets()
        overrides = [data for data, _, _ in self._overrides]
        if self.rule is not None:
            window = self.window.cleaned_data
            overrides = services.Routes.Window(window["start"], window["shown"], overrides)
        data = {
            **self.form.cleaned_data,
            "default_deliver_through": [target for target, _ in self._default],
            "domain_overrides": overrides,
        }
        try:
            if self.rule is None:
                return services.create_virtual_mta(RoutingRule, data)
            return services.update_virtual_mta(RoutingRule, self.rule.pk, data)
        except RelayError as error:
            for message in error.messages:
                self._show(message)
            raise

    def _show(self, message):
        if message == "name" or message.startswith("name "):
            return self.form.add_error("name", message)
        if message.startswith(("default.randomization_type", "default_randomization_type")):
            return self.form.add_error("default_randomization_type", message)
        found = _PATH.match(message)
        if found is None:
            return self.form.add_error(None, message)
        override, attribute, row = found.groups()
        if override is None:
            return self._show_in_route(self.default, self._default, row, message)
        # The service numbers the whole list; this page holds its overrides from `start`.
        shown = int(override) - (self.start if self.rule is not None else 0)
        if not 0 <= shown < len(self._overrides):
            return self.form.add_error(None, message)  # an override on another page
        _, form, route = self._overrides[shown]
        if attribute == "deliver_through":
            return self._show_in_route(route, route.targets(), row, message)
        if attribute == "domains":
            return form.add_error("domains", message)
        return form.add_error(None, message)

    @staticmethod
    def _show_in_route(route, targets, row, message):
        if row is None:
            route.non_form_errors().append(message)
        else:
            targets[int(row)][1].add_error(None, message)


def _more_rows(data):
    """The submitted data with one more override (ADD_OVERRIDE, with ROWS_ADDED blank targets)
    or ROWS_ADDED more rows in the route ADD_TARGETS names."""
    data = data.copy()

    def grow(prefix, more):
        count = data.get(f"{prefix}-TOTAL_FORMS", "")
        if count.isascii() and count.isdigit():
            data[f"{prefix}-TOTAL_FORMS"] = str(int(count) + more)
            return int(count)
        return None

    if ADD_OVERRIDE in data:
        added = grow("overrides", 1)
        if added is not None:
            data[f"overrides-{added}-targets-TOTAL_FORMS"] = str(ROWS_ADDED)
            data[f"overrides-{added}-targets-INITIAL_FORMS"] = "0"
    else:
        grow(data[ADD_TARGETS], ROWS_ADDED)
    return data


def _initial(rule, start, end):
    """The rule as stored, with its overrides from `start` to `end` (excluded)."""

    def targets(rows):
        return [
            {"virtual_mta": t.virtual_mta_id, "portion_of_mail": t.portion_of_mail} for t in rows
        ]

    overrides = list(
        rule.domain_overrides.prefetch_related("domains", "deliver_through")[start:end]
    )
    return {
        "rule": {"name": rule.name, "default_randomization_type": rule.default_randomization_type},
        "default": targets(rule.default_deliver_through),
        "overrides": [
            {
                "id": o.id,
                "domains": "\n".join(o.domain_list),
                "randomization_type": o.randomization_type,
                "targets": targets(o.deliver_through.all()),
            }
            for o in overrides
        ],
    }


@admin.register(RoutingRule)
class RoutingRuleAdmin(ReferencePanels, VirtualMtaAdmin):
    list_display = ["name", "default_route", "domain_override_count", "updated"]
    list_select_related = []
    search_fields = ["name"]
    ordering = ["id"]
    editor_template = "admin/relays/routingrule/editor.html"

    def get_queryset(self, request):
        # The list shows the default route and counts the overrides, and so does no more than
        # that: a rule's 1,000 overrides of 20 targets are 20,000 rows neither page shows.
        default = DeliverThrough.objects.filter(override=None).select_related("virtual_mta")
        return (
            super()
            .get_queryset(request)
            .annotate(override_count=Count("domain_overrides"))
            .prefetch_related(Prefetch("deliver_through", default))
        )

    @admin.display(description="Default route")
    def default_route(self, rule):
        targets = rule.default_deliver_through
        total = sum(t.portion_of_mail for t in targets)
        if not total:
            return "none: delivers nowhere"
        return format_html(
            ", ".join(["{} {}"] * len(targets)),
            *[
                part
                for t in targets
                for part in (link(t.virtual_mta), f"{t.portion_of_mail / total:.0%}")
            ],
        )

    @admin.display(description="Domain overrides")
    def domain_override_count(self, rule):
        return rule.override_count

    def add_view(self, request, form_url="", extra_context=None):
        return self.editor_view(request, None)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.editor_view(request, object_id)

    def editor_view(self, request, object_id):
        rule = None
        if object_id is None:
            editable = self.has_add_permission(request)
            if not editable:
                raise PermissionDenied
        else:
            rule = self.get_object(request, unquote(object_id))
            if rule is None:
                return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
            if not self.has_view_or_change_permission(request, rule):
                raise PermissionDenied
            editable = self.has_change_permission(request, rule)
        if request.method == "POST" and not editable:
            raise PermissionDenied

        page = request.GET.get(PAGE, "")
        editor = RuleEditor(
            rule,
            request.POST if request.method == "POST" else None,
            int(page) if page.isascii() and page.isdigit() and len(page) < 5 else 1,
        )
        if not editable:
            editor.disable()
        elif (
            request.method == "POST"
            and not editor.adding_rows
            and editor.is_valid()
            and (saved := self._save(request, editor)) is not None
        ):
            return self._saved(request, saved, rule is None, editor.page)
        return TemplateResponse(
            request,
            self.editor_template,
            {
                **self.admin_site.each_context(request),
                "title": f"{'Change' if editable else 'View'} routing rule"
                if rule
                else "Add routing rule",
                "subtitle": rule.name if rule else None,
                "opts": self.opts,
                "original": rule,
                "editor": editor,
                "editable": editable,
                "add": rule is None,
                "media": self.media + editor.media,
                "has_delete_permission": rule is not None
                and self.has_delete_permission(request, rule),
                "panels": [
                    ("Used by", self.used_by(rule)),
                    ("Effective delivery", self.effective_delivery(rule)),
                ]
                if rule
                else [],
                "max_targets": v.MAX_TARGETS_PER_ROUTE,
                "page_parameter": PAGE,
            },
        )

    def _save(self, request, editor):
        try:
            with audit.acting("admin", request):
                saved = editor.save()
        except RelayError:
            return None
        if editor.rule is None:
            self.log_addition(request, saved, [{"added": {}}])
        else:
            self.log_change(request, saved, [{"changed": {"fields": ["routes"]}}])
        return saved

    def _saved(self, request, rule, added, page):
        self.message_user(
            request,
            format_html(
                "The routing rule “{}” was {}.", link(rule), "added" if added else "changed"
            ),
            messages.SUCCESS,
        )
        if "_continue" in request.POST:
            url = reverse("admin:relays_routingrule_change", args=[rule.pk])
            return HttpResponseRedirect(f"{url}?{PAGE}={page}" if page > 1 else url)
        return HttpResponseRedirect(reverse("admin:relays_routingrule_changelist"))

    def get_fieldsets(self, request, obj=None):
        return [(None, {"fields": ["name"]})]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # Only the delete and history pages use the admin's form machinery here.
        kwargs["fields"] = ["name"]
        return super().get_form(request, obj, change, **kwargs)
