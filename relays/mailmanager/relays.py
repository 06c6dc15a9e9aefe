"""The five relay operations: CreateRelay, GetRelay, ListRelays, UpdateRelay, DeleteRelay.

A relay is a GreenArrow relay server: every write goes through the same services, so the
GreenArrow rules apply too (the stricter wins), and a relay made by either API is read, changed
and deleted through the other.
"""

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from relays import audit, services
from relays import validators as v
from relays.mailmanager.shapes import (
    RELAY_ID,
    RELAY_NAME,
    SERVER_NAME,
    AwsError,
    authentication_in,
    authentication_out,
    invalid,
    keeps_stored_credentials,
    port,
    string,
)
from relays.mailmanager.tags import assert_tag_quota, tag_list
from relays.models import ClientToken, RelayServer, RelayTag
from relays.tokens import InvalidToken, make_token, page_of, read_token

TOKEN_LIFETIME = timedelta(hours=24)
LIST_KEY = "mailmanager.relays"


def _relay(relay_id, fields=None):
    """The relay of `relay_id` (only `fields` of it, when given: a delete reads no credential,
    so it works whatever key they were stored under)."""
    found = RelayServer.objects.filter(relay_id=relay_id)
    found = (found.only(*fields) if fields else found).first()
    if found is None:
        raise AwsError("ResourceNotFoundException", f"Relay {relay_id} not found", 404)
    return found


# The Mail Manager members that stand for the relay's model fields: how this API names the
# field of a problem the core reports (relays.errors.Problem).
MEMBERS = {
    "name": "RelayName",
    "destination_hostname": "ServerName",
    "destination_port": "ServerPort",
    "secret_arn": "Authentication.SecretArn",
}


def _relay_fields(body, required):
    """RelayName, ServerName and ServerPort as model fields; absent ones (update) are left out."""
    fields = {
        "name": string(body, "RelayName", RELAY_NAME, required),
        "destination_hostname": string(body, "ServerName", SERVER_NAME, required),
        "destination_port": port(body, required),
    }
    return {field: value for field, value in fields.items() if value is not None}


def create_relay(body, user):
    """CreateRelay; with a ClientToken (boto3 always sends one) a retry returns the first
    result. Every member is checked before anything else (a quota or a token is never what
    answers a malformed call). The token row is inserted first, in the same transaction as the
    relay: a concurrent call with the same token waits on the unique index until this one
    commits or rolls back."""
    token = body.get("ClientToken")
    if token is not None and (
        not isinstance(token, str) or not 1 <= len(token) <= 128 or not v.is_storable(token)
    ):
        raise invalid(
            "ClientToken must be a string of 1 to 128 characters without NUL characters "
            "or unpaired surrogates"
        )
    fields = {**_relay_fields(body, required=True), **authentication_in(body)}
    tags = tag_list(body["Tags"], "Tags") if body.get("Tags") is not None else {}
    assert_tag_quota(len(tags))
    # The members this operation reads, all checked above (so shallow): an unknown member,
    # however deeply nested, neither changes what a token stands for nor is walked again.
    request = {
        k: body[k]
        for k in ("RelayName", "ServerName", "ServerPort", "Authentication", "Tags")
        if k in body
    }
    fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        record = None
        if token is not None:
            ClientToken.objects.filter(
                user=user, token=token, created_at__lt=timezone.now() - TOKEN_LIFETIME
            ).delete()
            record, created = ClientToken.objects.get_or_create(
                user=user, token=token, defaults={"fingerprint": fingerprint, "relay_id": ""}
            )
            if not created:
                if record.fingerprint != fingerprint:
                    raise AwsError(
                        "ConflictException",
                        "ClientToken was already used with other parameters",
                        409,
                    )
                return {"RelayId": record.relay_id}
        relay = services.create_virtual_mta(
            RelayServer,
            {
                **fields,
                "source_ip": settings.MAILMANAGER_SOURCE_IP,
                "source_hostname": settings.MAILMANAGER_HELO_HOSTNAME,
                "max_concurrent_connections": 0,
                "max_messages_per_hour": 0,
            },
        )
        RelayTag.objects.bulk_create(RelayTag(relay=relay, key=k, value=v) for k, v in tags.items())
        audit.record_tags(relay, {})
        if record is not None:
            record.relay_id = relay.relay_id
            record.save(update_fields=["relay_id"])
        return {"RelayId": relay.relay_id}


def get_relay(body, user):
    relay = _relay(string(body, "RelayId", RELAY_ID))
    return {
        "RelayId": relay.relay_id,
        "RelayArn": relay.arn,
        "RelayName": relay.name,
        "ServerName": relay.destination_hostname,
        "ServerPort": relay.destination_port,
        "Authentication": authentication_out(relay),
        "CreatedTimestamp": relay.created_at.timestamp(),
        "LastModifiedTimestamp": relay.updated_at.timestamp(),
    }


def list_relays(body, user):
    size = body.get("PageSize")
    if size is None:
        size = 20
    if type(size) is not int or not 1 <= size <= 50:
        raise invalid("PageSize must be an integer from 1 to 50")
    after = None
    if body.get("NextToken") is not None:
        try:
            after, _ = read_token(LIST_KEY, body["NextToken"])
        except InvalidToken:
            raise invalid("NextToken is not a valid token for ListRelays") from None
    relays = page_of(RelayServer.objects.all(), after, limit=size + 1)
    page = list(relays.only("id", "relay_id", "name", "updated_at"))
    answer = {
        "Relays": [
            {
                "RelayId": r.relay_id,
                "RelayName": r.name,
                "LastModifiedTimestamp": r.updated_at.timestamp(),
            }
            for r in page[:size]
        ]
    }
    if len(page) > size:
        answer["NextToken"] = make_token(LIST_KEY, page[size - 1].id, 0)
    return answer


def update_relay(body, user):
    """Every member is checked first: a malformed call is a ValidationException whether or not
    its relay exists."""
    relay_id = string(body, "RelayId", RELAY_ID)
    data = _relay_fields(body, required=False)
    auth = authentication_in(body, required=False)
    relay = _relay(relay_id)
    if auth is not None and not keeps_stored_credentials(relay, auth):
        data.update(auth)
    services.update_virtual_mta(RelayServer, relay.pk, data)
    return {}


def delete_relay(body, user):
    relay = _relay(string(body, "RelayId", RELAY_ID), fields=["pk"])
    services.delete_virtual_mta(RelayServer, relay.pk)
    return {}
