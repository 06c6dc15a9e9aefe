"""Writes: every change to the VirtualMTA store goes through these functions, one transaction each.

Both API facades and the admin call them, so a rule that spans several rows (a name unique
across all types, a reference that must exist, a redirect that must not close a loop, a delete
refused while referenced) lives here once.
"""

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Lower

from relays.errors import InUse, NameTaken, NotFound, ValidationFailed
from relays.models import RelayServer, VirtualMta

# Any constant works: it names "the reference graph" among PostgreSQL's advisory locks.
_REFERENCE_LOCK_KEY = 0x52454C41  # "RELA"


def lock_references():
    """Serialise every write that adds or removes a reference between VirtualMTAs.

    A loop check reads the graph and then writes one edge; two requests closing a loop from both
    ends (A->B and B->A) would each see no loop unless they run one after the other. Taking one
    transaction-scoped advisory lock first also fixes the order in which such writes lock rows,
    so they cannot deadlock. On SQLite every write transaction already holds the database's
    write lock (BEGIN IMMEDIATE), which serialises them the same way.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_REFERENCE_LOCK_KEY])


def describe(vmta):
    """How messages name a VirtualMTA: `relay_server 4 (relay-1)`."""
    return f"{vmta.type} {vmta.id} ({vmta.name})"


# --- references -----------------------------------------------------------------------------


def resolve_reference(ref, path):
    """The VirtualMTA a reference hash names: by `id` when given (`name` is then ignored),
    otherwise by `name`, case-insensitively. Raises ValidationFailed naming `path`."""
    if ref.get("id") is not None:
        found = VirtualMta.objects.filter(id=ref["id"]).first()
        if found is None:
            raise ValidationFailed(f"{path} refers to no VirtualMTA with id {ref['id']}")
        return found
    found = (
        VirtualMta.objects.annotate(lname=Lower("name")).filter(lname=ref["name"].lower()).first()
    )
    if found is None:
        raise ValidationFailed(f"{path} refers to no VirtualMTA named {ref['name']!r}")
    return found


def _edges_from(ids):
    """(from, to) pairs for the traffic the given VirtualMTAs hand on: one query per edge kind."""
    return list(
        VirtualMta.objects.filter(id__in=ids, redirect__isnull=False).values_list(
            "id", "redirect_id"
        )
    )


def find_loop(source_id, target_ids):
    """The path target -> ... -> source if `source` handing traffic to `target_ids` would close a
    loop, else None. Walks the graph breadth-first, one round of queries per level."""
    parent = dict.fromkeys(target_ids)
    level = set(target_ids)
    while level:
        if source_id in level:
            path, node = [], source_id
            while node is not None:
                path.append(node)
                node = parent[node]
            return list(reversed(path))
        following = set()
        for src, dst in _edges_from(level):
            if dst not in parent:
                parent[dst] = src
                following.add(dst)
        level = following
    return None


def assert_no_loop(source, targets, path):
    """Refuse the write if `source` handing traffic to `targets` would close a loop."""
    target_ids = [t.id for t in targets]
    if source.id is None:  # a new record has no referrers yet, so it cannot close a loop
        return
    if source.id in target_ids:
        raise ValidationFailed(f"{path} must not point at the VirtualMTA itself")
    loop = find_loop(source.id, target_ids)
    if loop:
        names = dict(VirtualMta.objects.filter(id__in=loop).values_list("id", "name"))
        chain = " -> ".join([source.name, *(names[i] for i in loop)])
        raise ValidationFailed(f"{path} would create a delivery loop: {chain}")


def referrers(vmta):
    """Every record that refers to `vmta`, as {type, id, name, attribute} (costs one query)."""
    return [
        {"type": r.type, "id": r.id, "name": r.name, "attribute": "redirect"}
        for r in vmta.redirected_from.order_by("id")
    ]


# --- writes ---------------------------------------------------------------------------------


def _assert_name_free(vmta):
    taken = (
        VirtualMta.objects.annotate(lname=Lower("name"))
        .filter(lname=vmta.name.lower())
        .exclude(id=vmta.id)
        .first()
    )
    if taken is not None:
        raise NameTaken(f"name {vmta.name!r} is already used by {describe(taken)}")


def _full_clean(vmta):
    """Model-level rules; messages name fields by their public API path."""
    try:
        # Constraints are checked below with better messages and, for races, by the database.
        vmta.full_clean(exclude=["redirect"], validate_constraints=False)
    except ValidationError as error:
        paths = getattr(vmta, "API_PATHS", {})
        raise ValidationFailed(
            [
                message if field == NON_FIELD_ERRORS else f"{paths.get(field, field)} {message}"
                for field, messages in error.message_dict.items()
                for message in messages
            ]
        ) from None


def _save(vmta, data):
    """Apply `data` (model field names; `redirect` as a reference hash or None) and save."""
    data = dict(data)
    redirect_given = "redirect" in data
    redirect_ref = data.pop("redirect", None)
    for field, value in data.items():
        setattr(vmta, field, value)
    problems, name_taken = [], False
    if redirect_given:
        try:
            vmta.redirect = (
                None if redirect_ref is None else resolve_reference(redirect_ref, "redirect")
            )
        except ValidationFailed as error:
            problems += error.messages
    for check in (_full_clean, _assert_name_free):
        try:
            check(vmta)
        except ValidationFailed as error:
            problems += error.messages
            name_taken = name_taken or isinstance(error, NameTaken)
    if problems:
        # All problems at once; NameTaken (still a ValidationFailed) lets a facade answer a
        # conflict where its protocol has one.
        raise (NameTaken if name_taken else ValidationFailed)(problems)
    if redirect_given and vmta.redirect is not None:
        assert_no_loop(vmta, [vmta.redirect], "redirect")
    try:
        with transaction.atomic():
            vmta.save()
    except IntegrityError as error:
        # The pre-check above lost a race with a concurrent write of the same name.
        if "relays_virtualmta_name_ci_unique" in str(error):
            raise NameTaken(f"name {vmta.name!r} is already used by another VirtualMTA") from None
        raise
    return vmta


def _get_for_update(model, pk):
    found = model.objects.select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound(f"no {model.VMTA_TYPE} with id {pk}")
    return found


def _touches_references(data):
    return data.get("redirect") is not None


def create_relay_server(data):
    with transaction.atomic():
        if _touches_references(data):
            lock_references()
        return _save(RelayServer(), data)


def update_relay_server(pk, data):
    with transaction.atomic():
        if _touches_references(data):
            lock_references()
        return _save(_get_for_update(RelayServer, pk), data)


def delete_virtual_mta(model, pk):
    """Delete a VirtualMTA unless something refers to it; then every referrer is named."""
    with transaction.atomic():
        lock_references()
        vmta = _get_for_update(model, pk)
        found = referrers(vmta)
        if found:
            raise InUse(
                [
                    f"{describe(vmta)} is used by {r['type']} {r['id']} ({r['name']}) "
                    f"as its {r['attribute']}"
                    for r in found
                ]
            )
        vmta.delete()
