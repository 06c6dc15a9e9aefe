"""Users and groups in the admin, as Django ships them, but acting as the admin door: their
changes (a new superuser, a permission granted) reach the audit log (relays.audit_accounts)
with the operator's name and address, like every other change made here."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from relays import audit
from relays.admin.audited import BrowserInputs


class ActingAsAdmin(BrowserInputs):
    """Every view that can write runs inside `audit.acting("admin", request)`."""

    def changeform_view(self, request, *args, **kwargs):
        with audit.acting("admin", request):
            return super().changeform_view(request, *args, **kwargs)

    def delete_view(self, request, *args, **kwargs):
        with audit.acting("admin", request):
            return super().delete_view(request, *args, **kwargs)

    def changelist_view(self, request, *args, **kwargs):  # bulk actions
        with audit.acting("admin", request):
            return super().changelist_view(request, *args, **kwargs)


class AuditedUserAdmin(ActingAsAdmin, UserAdmin):
    def user_change_password(self, request, *args, **kwargs):
        with audit.acting("admin", request):
            return super().user_change_password(request, *args, **kwargs)


class AuditedGroupAdmin(ActingAsAdmin, GroupAdmin):
    pass


User = get_user_model()
for model, model_admin in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
