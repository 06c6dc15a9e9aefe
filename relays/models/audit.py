"""The audit log's rows (written by relays.audit)."""

from django.db import models


class AuditEntry(models.Model):
    """One change to the store: who made it, when, from where, through which door, and the
    record before and after (secrets redacted). Written in the same transaction as the change
    (relays.audit), so a change is never without its entry nor an entry without its change.
    Read-only everywhere."""

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        # Not changes to the store, but acts an operator must be able to trace: an SMTP probe
        # of a relay (where it connected, what came of it) and a Postfix apply.
        PROBE = "probe"
        APPLY = "apply"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The actor by name and id, not a foreign key: the entry outlives the account.
    actor = models.CharField(max_length=150, blank=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    facade = models.CharField(
        max_length=20, help_text="greenarrow, mailmanager, admin or command (the door used)"
    )
    address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    # Mail Manager calls act as the access key's user; the key, and who made it, say how.
    access_key_id = models.CharField(max_length=20, blank=True)
    access_key_maker = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    record_type = models.CharField(max_length=30)
    record_id = models.BigIntegerField(null=True, blank=True)
    record_name = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["record_type", "record_id", "-at"], name="relays_audit_record_idx")
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor or '?'} {self.action} {self.record_type} {self.record_id}"
