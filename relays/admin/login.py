"""The admin's login form, counted with the APIs' logins against brute force (relays.lockout)."""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from relayapi.clients import client_address
from relays import lockout, password_slots
from relays.models import LoginFailure


class LockoutAuthenticationForm(AdminAuthenticationForm):
    """The admin login form, counted with the APIs' logins (relays.lockout): a locked address,
    (username, address) pair or account is refused before any password is checked, and so is a
    login that finds every hashing slot taken (relays.password_slots); sessions already open
    are not affected. Every other refusal, a non-staff or inactive account with the right
    password included, is Django's one "correct username and password for a staff account"
    message."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked_out": "Too many failed logins from your address. Try again in %(wait)s seconds.",
        "account_locked_out": (
            "Too many failed logins for this account. Try again in %(wait)s seconds."
        ),
        "busy": "Too many logins are being checked at once. Try again in a moment.",
    }
    retry_after = 0

    def _refuse(self, code, wait):
        self.retry_after = wait
        raise ValidationError(self.error_messages[code], code=code, params={"wait": wait})

    def clean(self):
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()  # a field is missing: nothing was tried
        address = client_address(self.request)
        try:
            # The slot first, as for HTTP Basic: without one, nothing else is looked at.
            with password_slots.slot():
                if wait := lockout.retry_after(username, address):
                    self._refuse("locked_out", wait)
                if wait := lockout.account_retry_after(username):
                    self._refuse("account_locked_out", wait)
                try:
                    return super().clean()
                except ValidationError:
                    lockout.record_failure(username, address, LoginFailure.Door.ADMIN)
                    raise
        except password_slots.Busy as busy:
            self._refuse("busy", busy.retry_after)


def _login(request, extra_context=None, _site_login=admin.site.login):
    """The admin's login view; a locked-out attempt is answered 429 with Retry-After."""
    response = _site_login(request, extra_context)
    form = (getattr(response, "context_data", None) or {}).get("form")
    if getattr(form, "retry_after", 0):
        response.status_code = 429
        response["Retry-After"] = str(form.retry_after)
    return response


admin.site.login_form = LockoutAuthenticationForm
admin.site.login = _login
