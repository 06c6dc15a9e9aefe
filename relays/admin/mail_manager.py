"""The Mail Manager side in the admin: access keys (the secret shown once, on the page after
creation), and a relay's tags, edited under the Mail Manager API's own rules
(relays.validators) and audited like TagResource."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.forms.formsets import INITIAL_FORM_COUNT, TOTAL_FORM_COUNT
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache

from relays import access_keys, audit
from relays import validators as v
from relays.admin.audited import AuditedAdmin
from relays.errors import Forbidden
from relays.models import AccessKey, RelayServer, RelayTag

# Session key naming the one access key whose secret the next visit of its "created" page may
# show. Only the id is kept there: the secret stays encrypted in the database.
REVEAL = "relays_access_key_reveal"


class AccessKeyAddForm(forms.ModelForm):
    class Meta:
        model = AccessKey
        fields = ["user"]
        help_texts = {
            "user": "Requests signed with the key act as this user, with this user's "
            "permissions. Only an active staff user's keys are accepted.",
        }


@admin.register(AccessKey)
class AccessKeyAdmin(AuditedAdmin):
    """Mail Manager API access keys. The secret is never in a form or on a page, except once,
    right after the key is made."""

    list_display = [
        "access_key_id",
        "user",
        "is_active",
        "user_may_sign",
        "created_at",
        "created_by",
        "last_used_at",
    ]
    list_filter = ["is_active", ("user", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["access_key_id", "user__username"]
    ordering = ["id"]
    actions = ["deactivate", "activate"]
    fields = [
        "access_key_id",
        "user",
        "is_active",
        "created_at",
        "created_by",
        "created_via",
        "last_used_at",
    ]
    readonly_fields = [
        "access_key_id",
        "user",
        "created_at",
        "created_by",
        "created_via",
        "last_used_at",
    ]

    # A key acts as its user: only a superuser makes, sees or changes anyone else's
    # (relays.access_keys); everyone else works on their own keys only.
    # Every page loads keys without their secret (access_keys.without_secret): a key stored
    # under another encryption key is listed, shown, revoked and deleted like any other.
    def get_queryset(self, request):
        keys = access_keys.without_secret(super().get_queryset(request))
        return keys if request.user.is_superuser else keys.filter(user=request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = db_field.related_model.objects.filter(pk=request.user.pk)
            kwargs["initial"] = request.user.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(boolean=True, description="user may sign")
    def user_may_sign(self, key):
        return access_keys.may_sign(key.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AccessKeyAddForm
            kwargs["fields"] = ["user"]
        else:
            kwargs["help_texts"] = {
                "is_active": "Untick to revoke: requests signed with this key are refused "
                "from then on (the key is kept, so its owner stays on record).",
            }
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["user"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        with audit.acting("admin", request):
            try:
                if change:
                    if "is_active" in form.changed_data:
                        access_keys.set_active(obj, obj.is_active)
                    return
                key = access_keys.create_access_key(obj.user)
            except Forbidden as refused:
                # The form offers only what this user may choose; a request forged around it
                # (or a right lost meanwhile) is refused, not a 500.
                raise PermissionDenied(refused.messages[0]) from None
        obj.pk, obj.access_key_id, obj.created_at = key.pk, key.access_key_id, key.created_at
        request.session[REVEAL] = key.pk
        if not access_keys.may_sign(key.user):
            messages.warning(
                request,
                f"Requests signed with {key.access_key_id} are refused until "
                f"{key.user.get_username()} is an active staff user.",
            )

    def delete_model(self, request, obj):
        with audit.acting("admin", request):
            try:
                access_keys.delete_access_key(obj)
            except Forbidden as refused:
                raise PermissionDenied(refused.messages[0]) from None

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(
            reverse(
                "admin:relays_accesskey_created", args=[obj.pk], current_app=self.admin_site.name
            )
        )

    def get_urls(self):
        created = self.admin_site.admin_view(self.created_view)
        return [
            path("<int:pk>/created/", created, name="relays_accesskey_created"),
            *super().get_urls(),
        ]

    @method_decorator(never_cache)
    def created_view(self, request, pk):
        """The page after creation: the secret, if this session has not been shown it yet."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        key = self.get_queryset(request).defer(None).select_related("user").filter(pk=pk).first()
        if key is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, str(pk))
        shown = request.session.get(REVEAL) == key.pk
        if shown:
            del request.session[REVEAL]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Access key {key.access_key_id}",
            "key": key,
            "secret": key.secret if shown else None,
            "change_url": reverse("admin:relays_accesskey_change", args=[key.pk]),
        }
        return TemplateResponse(request, "admin/relays/accesskey/created.html", context)

    @admin.action(description="Deactivate (revoke) selected access keys", permissions=["change"])
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, False, "deactivated")

    @admin.action(description="Activate selected access keys", permissions=["change"])
    def activate(self, request, queryset):
        self._set_active(request, queryset, True, "activated")

    def _set_active(self, request, queryset, active, done):
        with audit.acting("admin", request), transaction.atomic():
            changed = [key for key in queryset if access_keys.set_active(key, active)]
        self.message_user(request, f"{len(changed)} access key(s) {done}.", messages.SUCCESS)


# --- Tags on the relay server page ---


class RelayTagForm(forms.ModelForm):
    # The Mail Manager API's own rules and messages (relays.validators); the length is part of
    # the pattern, so no separate max_length message.
    key = forms.CharField(
        strip=False,
        validators=v.TAG_KEY_VALIDATORS,
        widget=forms.TextInput(attrs={"maxlength": 128}),
        help_text="1-128 of letters, digits and / _ + = . : @ - ; not starting with aws:",
    )
    value = forms.CharField(
        required=False,
        strip=False,
        validators=v.TAG_VALUE_VALIDATORS,
        widget=forms.TextInput(attrs={"maxlength": 256}),
        help_text="0-256 of the same characters.",
    )

    class Meta:
        model = RelayTag
        fields = ["key", "value"]


class RelayTagFormSet(BaseInlineFormSet):
    """Checks the tag quota; saving audits the change of tags as one entry, as TagResource does."""

    request = None

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        total = f"{self.prefix}-{TOTAL_FORM_COUNT}"
        if self.is_bound and total not in self.data:
            # A POST without the tags' part (a script, not the page): the tags stay as they are.
            self.data = self.data.copy()
            self.data[total] = self.data[f"{self.prefix}-{INITIAL_FORM_COUNT}"] = "0"

    def clean(self):
        super().clean()
        kept = [
            form
            for form in self.forms
            if form.has_changed() or form.instance.pk is not None
            if not (self.can_delete and self._should_delete_form(form))
        ]
        try:
            v.tag_count(len(kept))
        except forms.ValidationError as error:
            raise forms.ValidationError(error.messages) from None

    def save(self, commit=True):
        before = audit.tags_of(self.instance)
        saved = super().save(commit)
        with audit.acting("admin", self.request):
            audit.record_tags(self.instance, before)
        return saved


class RelayTagInline(admin.TabularInline):
    """A relay's Mail Manager tags (what ListTagsForResource answers)."""

    model = RelayTag
    form = RelayTagForm
    formset = RelayTagFormSet
    extra = 0
    verbose_name = "Mail Manager tag"

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.request = request
        return formset


class RelayMailManagerFields:
    """For the relay server admin: RelayId and ARN on the change page, read-only, in a
    "Mail Manager" fieldset (Mail Manager names the relay with them), and the tags inline."""

    MAIL_MANAGER = ["relay_id", "arn"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # On the add page there is no RelayId yet (it is made when the relay is saved).
        return fields + self.MAIL_MANAGER if obj is not None else fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (
                name,
                {**options, "fields": [f for f in options["fields"] if f not in self.MAIL_MANAGER]},
            )
            for name, options in super().get_fieldsets(request, obj)
        ]
        if obj is None:
            return fieldsets
        return [
            *fieldsets,
            (
                "Mail Manager",
                {
                    "fields": self.MAIL_MANAGER,
                    "description": "How the Mail Manager API names this relay (every relay has "
                    "them, whichever door made it); its tags are below.",
                },
            ),
        ]

    @admin.display(description="ARN")
    def arn(self, relay: RelayServer):
        return relay.arn
