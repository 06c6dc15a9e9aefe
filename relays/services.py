"""Writes: every change to the VirtualMTA store goes through these functions, one transaction each.

Both API facades and the admin call them, so a rule that spans several rows (a name unique
across all types, a reference that must exist, no delivery loop, a delete refused while
referenced) lives here once.
"""

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Lower

from relays.errors import InUse, NameTaken, NotFound, QuotaExceeded, ValidationFailed
from relays.models import (
    DefaultVirtualMta,
    DeliverThrough,
    DomainOverride,
    OverrideDomain,
    RelayServer,
    VirtualMta,
)

# Any constant works: it names "the reference graph" among PostgreSQL's advisory locks.
_REFERENCE_LOCK_KEY = 0x52454C41  # "RELA"


def lock_references():
    """Serialise every write that adds or removes a reference between VirtualMTAs.

    A loop check reads the graph and then writes edges; two requests closing a loop from both
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


def resolve_references(refs):
    """The VirtualMTAs named by reference hashes, as {path: VirtualMTA}: by `id` when given (the
    `name` is then ignored), otherwise by `name`, case-insensitively. Two queries at most.

    `refs` is a list of (path, {"id", "name"}); every unresolved one is reported at once.
    """
    ids = {ref["id"] for _, ref in refs if ref["id"] is not None}
    names = {ref["name"].lower() for _, ref in refs if ref["id"] is None}
    by_id = {m.id: m for m in VirtualMta.objects.filter(id__in=ids)} if ids else {}
    by_name = (
        {
            m.lname: m
            for m in VirtualMta.objects.annotate(lname=Lower("name")).filter(lname__in=names)
        }
        if names
        else {}
    )
    found, problems = {}, []
    for path, ref in refs:
        if ref["id"] is not None:
            found[path] = by_id.get(ref["id"])
            if found[path] is None:
                problems.append(f"{path} refers to no VirtualMTA with id {ref['id']}")
        else:
            found[path] = by_name.get(ref["name"].lower())
            if found[path] is None:
                problems.append(f"{path} refers to no VirtualMTA named {ref['name']!r}")
    if problems:
        raise ValidationFailed(problems)
    return found


def _edges_from(ids):
    """(from, to) pairs for the traffic the given VirtualMTAs hand on: redirects and routing-rule
    targets, one query each."""
    redirects = VirtualMta.objects.filter(id__in=ids, redirect__isnull=False).values_list(
        "id", "redirect_id"
    )
    routes = DeliverThrough.objects.filter(rule_id__in=ids).values_list("rule_id", "virtual_mta_id")
    return [*redirects, *routes]


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
    """Refuse the write if `source` handing traffic to `targets` (through its attribute `path`)
    would close a loop."""
    if source.id is None:  # a new record has no referrers yet, so it cannot close a loop
        return
    target_ids = [t.id for t in targets]
    if source.id in target_ids:
        raise ValidationFailed(f"{path} must not point at the VirtualMTA itself")
    loop = find_loop(source.id, target_ids)
    if loop:
        names = dict(VirtualMta.objects.filter(id__in=loop).values_list("id", "name"))
        chain = " -> ".join([source.name, *(names[i] for i in loop)])
        raise ValidationFailed(f"{path} would create a delivery loop: {chain}")


def referrers(vmta):
    """Every record that refers to `vmta`: [{type, id, name, attribute}], ordered by referrer.

    The same list answers `used_by` and explains a refused delete. Three queries.
    """
    found = [
        {"type": r.type, "id": r.id, "name": r.name, "attribute": "redirect"}
        for r in vmta.redirected_from.order_by("id")
    ]
    # The default route (no override) first on every database: NULLs sort differently.
    routes = vmta.routed_from.select_related("rule", "override").order_by(
        "rule_id", F("override__position").asc(nulls_first=True), "position"
    )
    for route in routes:
        rule = route.rule
        if route.override is None:
            attribute = f"default.deliver_through[{route.position}].virtual_mta"
        else:
            attribute = f"domain_overrides[{route.override.position}].deliver_through[{route.position}].virtual_mta"
        found.append({"type": rule.type, "id": rule.id, "name": rule.name, "attribute": attribute})
    if DefaultVirtualMta.objects.filter(virtual_mta=vmta).exists():
        found.append(
            {"type": "default_virtual_mta", "id": None, "name": None, "attribute": "virtual_mta"}
        )
    return found


def _referrer_sentence(vmta, r):
    if r["type"] == "default_virtual_mta":
        return f"{describe(vmta)} is the default VirtualMTA"
    return (
        f"{describe(vmta)} is used by {r['type']} {r['id']} ({r['name']}) as its {r['attribute']}"
    )


# --- routing-rule routes ----------------------------------------------------------------------


class Routes:
    """A routing rule's routes as written in one request, resolved and checked before saving.

    `default` is the default route's targets (or None: unchanged); `overrides` the whole new
    list of domain overrides (or None: unchanged).
    """

    def __init__(self, rule, default_targets, overrides):
        self.rule = rule
        self.default = default_targets
        self.overrides = overrides
        refs = []
        for i, item in enumerate(default_targets or []):
            refs.append((f"default.deliver_through[{i}].virtual_mta", item["virtual_mta"]))
        for i, override in enumerate(overrides or []):
            for j, item in enumerate(override["deliver_through"]):
                refs.append(
                    (f"domain_overrides[{i}].deliver_through[{j}].virtual_mta", item["virtual_mta"])
                )
        problems, self.targets = [], {}
        try:
            self.targets = resolve_references(refs)
        except ValidationFailed as error:
            problems += error.messages
        if overrides is not None:
            problems += self._match_overrides()
            problems += self._duplicate_domains()
        if problems:
            raise ValidationFailed(problems)

    def _match_overrides(self):
        """Which existing override each new one updates: the one its `id` names, or else an
        unchanged one (same domains, randomization and targets), so unchanged overrides keep
        their ids on a PUT of the whole list."""
        existing = {o.id: o for o in self.rule.domain_overrides.all()} if self.rule.id else {}
        problems, self.matched = [], [None] * len(self.overrides)
        for i, override in enumerate(self.overrides):
            if override.get("id") is not None:
                if override["id"] not in existing:
                    problems.append(
                        f"domain_overrides[{i}].id refers to no domain override of this routing rule"
                    )
                else:
                    self.matched[i] = existing.pop(override["id"])
        for i, override in enumerate(self.overrides):
            if self.matched[i] is None and override.get("id") is None:
                same = next((o for o in existing.values() if self._same(o, i)), None)
                if same is not None:
                    self.matched[i] = existing.pop(same.id)
        return problems

    def _same(self, existing, i):
        override = self.overrides[i]
        targets = [
            (
                self.targets.get(f"domain_overrides[{i}].deliver_through[{j}].virtual_mta"),
                item["portion_of_mail"],
            )
            for j, item in enumerate(override["deliver_through"])
        ]
        return (
            existing.domain_list == override["domain_list"]
            and existing.randomization_type == override["randomization_type"]
            and [(d.virtual_mta, d.portion_of_mail) for d in existing.deliver_through.all()]
            == targets
        )

    def _duplicate_domains(self):
        seen, problems = {}, []
        for i, override in enumerate(self.overrides):
            for j, domain in enumerate(override["domain_list"]):
                key = domain.lower()
                if key in seen:
                    problems.append(
                        f"domain_overrides[{i}].domains[{j}] {domain} is already listed in {seen[key]}"
                    )
                else:
                    seen[key] = f"domain_overrides[{i}]"
        return problems

    def check_loops(self):
        problems = []
        groups = [("default.deliver_through", self.default)] + [
            (f"domain_overrides[{i}].deliver_through", o["deliver_through"])
            for i, o in enumerate(self.overrides or [])
        ]
        for path, items in groups:
            if items is None:
                continue
            targets = [self.targets[f"{path}[{j}].virtual_mta"] for j in range(len(items))]
            try:
                assert_no_loop(self.rule, targets, path)
            except ValidationFailed as error:
                problems += error.messages
        if problems:
            raise ValidationFailed(problems)

    def write(self):
        rule = self.rule
        rows = []
        if self.default is not None:
            rule.deliver_through.filter(override=None).delete()
            rows += self._targets(None, "default.deliver_through", self.default)
        if self.overrides is not None:
            keep = [o.id for o in self.matched if o is not None]
            rule.domain_overrides.exclude(id__in=keep).delete()
            DeliverThrough.objects.filter(override_id__in=keep).delete()
            OverrideDomain.objects.filter(rule=rule).delete()
            domains = []
            for i, (override, existing) in enumerate(
                zip(self.overrides, self.matched, strict=True)
            ):
                target = existing or DomainOverride(rule=rule)
                target.position = i
                target.randomization_type = override["randomization_type"]
                target.save()
                domains += [
                    OverrideDomain(override=target, rule=rule, position=j, domain=d)
                    for j, d in enumerate(override["domain_list"])
                ]
                rows += self._targets(
                    target, f"domain_overrides[{i}].deliver_through", override["deliver_through"]
                )
            OverrideDomain.objects.bulk_create(domains)
        DeliverThrough.objects.bulk_create(rows)

    def _targets(self, override, path, items):
        return [
            DeliverThrough(
                rule=self.rule,
                override=override,
                position=j,
                virtual_mta=self.targets[f"{path}[{j}].virtual_mta"],
                portion_of_mail=item["portion_of_mail"],
            )
            for j, item in enumerate(items)
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
        # The name constraint is checked by _assert_name_free with a better message and, for
        # races, by the database itself.
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
    """Apply `data` (model field names; references as {"id", "name"} hashes) and save.

    Every problem is collected before anything is written; the caller's transaction makes the
    write all-or-nothing.
    """
    data = dict(data)
    redirect_given = "redirect" in data
    redirect_ref = data.pop("redirect", None)
    default_targets = data.pop("default_deliver_through", None)
    overrides = data.pop("domain_overrides", None)
    for field, value in data.items():
        setattr(vmta, field, value)
    if isinstance(vmta, RelayServer):
        vmta.use_stored_credentials(data)

    problems, name_taken, routes = [], False, None
    if redirect_given:
        try:
            vmta.redirect = (
                None
                if redirect_ref is None
                else resolve_references([("redirect", redirect_ref)])["redirect"]
            )
        except ValidationFailed as error:
            problems += error.messages
    if default_targets is not None or overrides is not None:
        try:
            routes = Routes(vmta, default_targets, overrides)
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
    if routes is not None:
        routes.check_loops()
    try:
        with transaction.atomic():
            vmta.save()
    except IntegrityError as error:
        # The pre-check above lost a race with a concurrent write of the same name.
        if "relays_virtualmta_name_ci_unique" in str(error):
            raise NameTaken(f"name {vmta.name!r} is already used by another VirtualMTA") from None
        raise
    if routes is not None:
        routes.write()
    return vmta


def _get_for_update(model, pk):
    found = model.objects.select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound(f"no {model.VMTA_TYPE} with id {pk}")
    return found


def _adds_references(data):
    return any(data.get(key) for key in ("redirect", "default_deliver_through", "domain_overrides"))


def _assert_below_quota(model):
    """RELAYAPI_MAX_RELAYS caps the relay servers; the caller holds the reference lock, so two
    creates cannot both take the last place."""
    limit = settings.RELAYAPI_MAX_RELAYS
    if model is RelayServer and limit is not None and RelayServer.objects.count() >= limit:
        raise QuotaExceeded(f"the maximum number of relay servers ({limit}) is reached")


def create_virtual_mta(model, data):
    """Create an IP address, relay server or routing rule from validated `data`."""
    with transaction.atomic():
        if _adds_references(data) or settings.RELAYAPI_MAX_RELAYS is not None:
            lock_references()
        _assert_below_quota(model)
        return _save(model(), data)


def update_virtual_mta(model, pk, data):
    """Change the attributes in `data`; everything omitted keeps its value."""
    with transaction.atomic():
        if _adds_references(data):
            lock_references()
        return _save(_get_for_update(model, pk), data)


def delete_virtual_mta(model, pk):
    """Delete a VirtualMTA unless something refers to it; then every referrer is named."""
    with transaction.atomic():
        lock_references()
        vmta = _get_for_update(model, pk)
        found = referrers(vmta)
        if found:
            raise InUse([_referrer_sentence(vmta, r) for r in found])
        vmta.delete()


def set_default_virtual_mta(ref):
    """Make the VirtualMTA named by `ref` the server's default (None: no default)."""
    with transaction.atomic():
        lock_references()
        target = None if ref is None else resolve_references([("virtual_mta", ref)])["virtual_mta"]
        setting, _ = DefaultVirtualMta.objects.select_for_update().get_or_create(id=1)
        setting.virtual_mta = target
        setting.save()
        return target


def get_default_virtual_mta():
    setting = DefaultVirtualMta.objects.select_related("virtual_mta").filter(id=1).first()
    return setting.virtual_mta if setting else None
