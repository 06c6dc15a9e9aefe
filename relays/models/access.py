"""Who may call the APIs and what their calls leave behind: Mail Manager access keys,
CreateRelay idempotency tokens, and the refused logins that count towards a lockout."""

from django.conf import settings
from django.db import models

from relays.crypto import EncryptedCharField


class AccessKey(models.Model):
    """A Mail Manager API credential: SigV4 requests signed with it act as `user`.

    SigV4 needs the secret itself (it is an HMAC key), so it is encrypted at rest
    (relays.crypto), not hashed like a password; it is shown once, when the key is created with
    `manage.py create_access_key USERNAME`.
    """

    access_key_id = models.CharField(max_length=20, unique=True)
    secret = EncryptedCharField(max_length=40)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_keys"
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Who made it (a user name, or the operating-system user of `create_access_key`) and
    # through which door: a key made for someone else says by whom.
    created_by = models.CharField(max_length=150, blank=True)
    created_via = models.CharField(max_length=20, blank=True)
    # When a request signed with it was last accepted, to the minute (relays.access_keys).
    last_used_at = models.DateTimeField("last used", null=True, blank=True, editable=False)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.access_key_id


class ClientToken(models.Model):
    """A Mail Manager CreateRelay idempotency token, kept in the database so that a retry that
    lands on another app server behaves the same. Same token and same parameters: the same
    RelayId, nothing new; same token, other parameters: a conflict. Tokens expire after 24 h."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="client_tokens"
    )
    token = models.CharField(max_length=128)
    fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the request without its token"
    )
    relay_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "token"], name="relays_clienttoken_unique_per_user"
            )
        ]

    def __str__(self):
        return self.token


class LoginFailure(models.Model):
    """One refused login (HTTP Basic, Mail Manager signature or admin form), kept only as long
    as it counts towards a lockout (see relays.lockout).

    In the database so that every worker and every app server sees the same counts. The name
    tried is kept as a keyed hash, never in clear: people type passwords into username fields.
    """

    class Door(models.TextChoices):
        GREENARROW = "greenarrow", "GreenArrow API (HTTP Basic)"
        MAILMANAGER = "mailmanager", "Mail Manager API (SigV4)"
        ADMIN = "admin", "admin login form"

    at = models.DateTimeField()
    address = models.GenericIPAddressField(help_text="the client address (relayapi.clients)")
    username_digest = models.CharField(
        max_length=64, help_text="keyed SHA-256 of the username or access key id tried"
    )
    door = models.CharField(max_length=20, choices=Door.choices)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The lockout check: the newest failures of one address, of one pair.
            models.Index(fields=["address", "-at"], name="relays_loginfail_address_at"),
            # The per-account limit: one name's newest failures, whatever the address.
            models.Index(fields=["username_digest", "-at"], name="relays_loginfail_name_at"),
            # Pruning: the oldest rows first.
            models.Index(fields=["at"], name="relays_loginfail_at"),
        ]

    def __str__(self):
        return f"{self.door} from {self.address} at {self.at:%Y-%m-%d %H:%M:%S}"
