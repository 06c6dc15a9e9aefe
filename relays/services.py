"""Writes: every change to the VirtualMTA store goes through these functions, one transaction each.

Both API facades and the admin call them, so a rule that spans several rows (a name unique
across all types, a reference that must exist, no delivery loop, a delete refused while
referenced) lives here once.
"""

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from relays import audit
from relays import validators as v
from relays.errors import (
    InUse,
    NameTaken,
    NotFound,
    Problem,
    QuotaExceeded,
    Stale,
    ValidationFailed,
)
from relays.models import (
    AuditEntry,
    DefaultVirtualMta,
    DeliverThrough,
    DomainOverride,
    OverrideDomain,
    RecordCount,
    RelayServer,
    VirtualMta,
)
from relays.references import (
    assert_hand_off_allowed,
    describe,
    lock_references,
    referrer_sentence,
    referrers,
    resolve_references,
)

# Who may read (and so keep, when moving a relay) a stored SMTP password.
REVEAL_CREDENTIALS = "relays.reveal_relay_credentials"

# --- routing-rule routes ----------------------------------------------------------------------


class Routes:
    """A routing rule's routes as written in one request, resolved and checked before saving.

    `default` is the default route's targets (or None: unchanged); `overrides` the whole new
    list of domain overrides, or a `Routes.Window` of it (or None: unchanged). Everything is
    read once up front and matched in memory, so the work grows linearly with the request,
    never with overrides x overrides.

    A route may name the same VirtualMTA more than once (the API always took it, and a
    GreenArrow client's PUT may carry it back): each row is kept as written, and delivery
    (relays.resolution) adds the portions up.
    """

    class Window:
        """A run of the rule's override list replaced, every other override kept as stored:
        what an editor showing the overrides a page at a time writes.

        `start` is where the run began in the list and `shown` the ids it held when read;
        `overrides` (complete, as in a whole list, `id` for those kept) replace it. Expanded
        against the list as stored while the write holds the rule's lock, and refused when
        those ids are no longer there in that order (the list was written since), so a save
        never lands on other overrides than the ones shown, nor drops one it never showed."""

        def __init__(self, start, shown, overrides):
            self.start, self.shown, self.overrides = start, list(shown), list(overrides)

        def whole_list(self, stored):
            """The whole new list, given `stored` (the rule's overrides as stored, in order)."""
            end = self.start + len(self.shown)
            if [o.id for o in stored[self.start : end]] != self.shown:
                raise ValidationFailed(
                    [
                        "domain_overrides were changed since they were read (the ones shown "
                        "are no longer at their place in the list): read them again"
                    ]
                )
            kept = [
                {
                    "id": o.id,
                    "domain_list": o.domain_list,
                    "randomization_type": o.randomization_type,
                    "deliver_through": [
                        {
                            "virtual_mta": {"id": t.virtual_mta_id, "name": None},
                            "portion_of_mail": t.portion_of_mail,
                        }
                        for t in o.deliver_through.all()
                    ],
                }
                for o in stored
            ]
            return kept[: self.start] + self.overrides + kept[end:]

    def __init__(self, rule, default_targets, overrides):
        self.rule = rule
        self.default = default_targets
        self._stored = None
        if isinstance(overrides, Routes.Window):
            overrides = overrides.whole_list(self._stored_overrides())
        self.overrides = overrides
        refs = [
            (f"{path}[{j}].virtual_mta", item["virtual_mta"])
            for path, items in self._routes()
            for j, item in enumerate(items)
        ]
        problems, self.targets = self._empty(), {}
        try:
            self.targets = resolve_references(refs)
        except ValidationFailed as error:
            problems += error.messages
        if overrides is not None:
            if len(overrides) > v.MAX_OVERRIDES_PER_RULE:
                # The API's serializer says so first; a window could grow the list past it.
                problems.append(
                    f"domain_overrides must have at most {v.MAX_OVERRIDES_PER_RULE} items"
                )
            problems += self._match_overrides()
            problems += self._duplicate_domains()
        if problems:
            raise ValidationFailed(problems)

    def _routes(self):
        """(attribute path, target items) of every route this request writes."""
        if self.default is not None:
            yield "default.deliver_through", self.default
        for i, override in enumerate(self.overrides or []):
            yield f"domain_overrides[{i}].deliver_through", override["deliver_through"]

    def _empty(self):
        """A route delivers somewhere, and an override applies to some domain."""
        problems = [f"{path} must not be empty" for path, items in self._routes() if not items]
        return problems + [
            f"domain_overrides[{i}].domains must not be empty"
            for i, override in enumerate(self.overrides or [])
            if not override["domain_list"]
        ]

    def groups(self):
        """(attribute path, [VirtualMTA]) for the hand-off check."""
        return [
            (path, [self.targets[f"{path}[{j}].virtual_mta"] for j in range(len(items))])
            for path, items in self._routes()
        ]

    def _stored_overrides(self):
        """The rule's overrides as stored, in order, with their domains and targets (read once)."""
        if self._stored is None:
            self._stored = (
                []
                if self.rule.id is None
                else list(self.rule.domain_overrides.prefetch_related("domains", "deliver_through"))
            )
        return self._stored

    def _existing_overrides(self):
        return {o.id: o for o in self._stored_overrides()}

    def _match_overrides(self):
        """Which existing override each new one updates: the one its `id` names, or else an
        unchanged one (same domains, randomization and targets), so unchanged overrides keep
        their ids on a PUT of the whole list."""
        existing = self._existing_overrides()
        problems, self.matched = [], [None] * len(self.overrides)
        for i, override in enumerate(self.overrides):
            if override.get("id") is not None:
                if override["id"] not in existing:
                    problems.append(
                        f"domain_overrides[{i}].id refers to no domain override of this routing rule"
                    )
                else:
                    self.matched[i] = existing.pop(override["id"])
        unchanged = {}
        for old in existing.values():
            unchanged.setdefault(self._signature_of_existing(old), []).append(old)
        for i, override in enumerate(self.overrides):
            if self.matched[i] is None and override.get("id") is None:
                same = unchanged.get(self._signature(i))
                if same:
                    self.matched[i] = same.pop(0)
        return problems

    @staticmethod
    def _signature_of_existing(override):
        return (
            tuple(d.domain for d in override.domains.all()),
            override.randomization_type,
            tuple((d.virtual_mta_id, d.portion_of_mail) for d in override.deliver_through.all()),
        )

    def _signature(self, i):
        override = self.overrides[i]
        path = f"domain_overrides[{i}].deliver_through"
        targets = self.targets
        return (
            tuple(override["domain_list"]),
            override["randomization_type"],
            tuple(
                (
                    getattr(targets.get(f"{path}[{j}].virtual_mta"), "id", None),
                    item["portion_of_mail"],
                )
                for j, item in enumerate(override["deliver_through"])
            ),
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

    def write(self):
        """Replace the written routes: a fixed number of bulk statements, whatever their size."""
        rule = self.rule
        rows = []
        if self.default is not None:
            rule.deliver_through.filter(override=None).delete()
            rows += self._targets(None, "default.deliver_through", self.default)
        if self.overrides is not None:
            # Every override is written anew (children first, in single statements, so the
            # delete loads nothing to cascade to); a matched one keeps its id.
            DeliverThrough.objects.filter(rule=rule, override__isnull=False).delete()
            OverrideDomain.objects.filter(rule=rule).delete()
            rule.domain_overrides.all().delete()
            saved = DomainOverride.objects.bulk_create(
                DomainOverride(
                    id=existing.id if existing else None,
                    rule=rule,
                    position=i,
                    randomization_type=override["randomization_type"],
                )
                for i, (override, existing) in enumerate(
                    zip(self.overrides, self.matched, strict=True)
                )
            )
            domains = []
            for i, (override, target) in enumerate(zip(self.overrides, saved, strict=True)):
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
        raise NameTaken(Problem("name", f"{vmta.name!r} is already used by {describe(taken)}"))


def _full_clean(vmta):
    """Model-level rules, each problem naming its model field (None: it spans fields)."""
    try:
        # The name constraint is checked by _assert_name_free with a better message and, for
        # races, by the database itself.
        vmta.full_clean(exclude=["redirect"], validate_constraints=False)
    except ValidationError as error:
        raise ValidationFailed(
            [
                Problem(None if field == NON_FIELD_ERRORS else field, message)
                for field, messages in error.message_dict.items()
                for message in messages
            ],
            names=getattr(vmta, "API_PATHS", {}),
        ) from None


def _save(vmta, data):
    """Apply `data` (model field names; references as {"id", "name"} hashes) and save.

    Every problem is collected before anything is written; the caller's transaction makes the
    write all-or-nothing.
    """
    data = dict(data)
    destination_before = (
        (vmta.destination_hostname, vmta.destination_port)
        if isinstance(vmta, RelayServer) and vmta.pk is not None
        else None
    )
    redirect_given = "redirect" in data
    redirect_ref = data.pop("redirect", None)
    default_targets = data.pop("default_deliver_through", None)
    overrides = data.pop("domain_overrides", None)
    for field, value in data.items():
        setattr(vmta, field, value)
    if isinstance(vmta, RelayServer):
        vmta.use_stored_credentials(data)
        if destination_before is not None:
            vmta.credentials_dropped = vmta.bind_credentials(
                destination_before, data, may_reveal=audit.caller_may(REVEAL_CREDENTIALS)
            )

    problems, name_taken, routes = [], False, None
    if redirect_given:
        try:
            vmta.redirect = (
                None
                if redirect_ref is None
                else resolve_references([("redirect", redirect_ref)])["redirect"]
            )
        except ValidationFailed as error:
            problems += error.problems
    if default_targets is not None or overrides is not None:
        try:
            routes = Routes(vmta, default_targets, overrides)
        except ValidationFailed as error:
            problems += error.problems
    for check in (_full_clean, _assert_name_free):
        try:
            check(vmta)
        except ValidationFailed as error:
            problems += error.problems
            name_taken = name_taken or isinstance(error, NameTaken)
    if problems:
        # All problems at once; NameTaken (still a ValidationFailed) lets a facade answer a
        # conflict where its protocol has one.
        raise (NameTaken if name_taken else ValidationFailed)(
            problems, names=getattr(vmta, "API_PATHS", {})
        )

    groups = [("redirect", [vmta.redirect])] if redirect_given and vmta.redirect else []
    if routes is not None:
        groups += routes.groups()
    if groups:
        assert_hand_off_allowed(vmta, groups)
    if vmta.pk is not None:
        vmta.version += 1  # the caller holds the row's lock (select_for_update)
    try:
        with transaction.atomic():
            vmta.save()
    except IntegrityError as error:
        # The pre-check above lost a race with a concurrent write of the same name.
        if "relays_virtualmta_name_ci_unique" in str(error):
            raise NameTaken(
                Problem("name", f"{vmta.name!r} is already used by another VirtualMTA")
            ) from None
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
    if model is RelayServer and limit is not None and RecordCount.of(model.VMTA_TYPE)[0] >= limit:
        raise QuotaExceeded(f"the maximum number of relay servers ({limit}) is reached")


def create_virtual_mta(model, data):
    """Create an IP address, relay server or routing rule from validated `data`."""
    with transaction.atomic():
        if _adds_references(data) or settings.RELAYAPI_MAX_RELAYS is not None:
            lock_references()
        _assert_below_quota(model)
        vmta = _save(model(), data)
        audit.record_change(AuditEntry.Action.CREATE, vmta)
        return vmta


def _assert_version(vmta, expected_versions):
    """A write based on one of `expected_versions` (None: whatever is stored) is refused once
    the record was written since."""
    if expected_versions is not None and vmta.version not in expected_versions:
        read = ", ".join(str(n) for n in sorted(expected_versions)) or "none"
        raise Stale(
            f"{describe(vmta)} was changed since it was read (version {read}, now "
            f"{vmta.version}); nothing was changed"
        )


def update_virtual_mta(model, pk, data, expected_versions=None):
    """Change the attributes in `data`; everything omitted keeps its value. With
    `expected_versions`, only if the record is still at one of them."""
    with transaction.atomic():
        if _adds_references(data):
            lock_references()
        vmta = _get_for_update(model, pk)
        _assert_version(vmta, expected_versions)
        before = audit.snapshot(vmta)
        _save(vmta, data)
        audit.record_change(AuditEntry.Action.UPDATE, vmta, before)
        return vmta


def delete_virtual_mta(model, pk, expected_versions=None):
    """Delete a VirtualMTA unless something refers to it; then every referrer is named. With
    `expected_versions`, only if the record is still at one of them."""
    with transaction.atomic():
        lock_references()
        from relays.crypto import without_secrets

        # Loaded without its credentials: a record stored under another key is deleted too.
        vmta = without_secrets(model.objects.select_for_update()).filter(pk=pk).first()
        if vmta is None:
            raise NotFound(f"no {model.VMTA_TYPE} with id {pk}")
        _assert_version(vmta, expected_versions)
        total, named = referrers(vmta, limit=v.MAX_REFERRERS_NAMED)
        if total:
            more = [f"and {total - len(named)} more"] if total > len(named) else []
            raise InUse([referrer_sentence(vmta, r) for r in named] + more)
        audit.record(AuditEntry.Action.DELETE, vmta.type, vmta.pk, vmta.name, audit.snapshot(vmta))
        vmta.delete()


def set_default_virtual_mta(ref):
    """Make the VirtualMTA named by `ref` the server's default (None: no default)."""
    with transaction.atomic():
        lock_references()
        target = None if ref is None else resolve_references([("virtual_mta", ref)])["virtual_mta"]
        setting, _ = DefaultVirtualMta.objects.select_for_update().get_or_create(id=1)
        before = {"virtual_mta_id": setting.virtual_mta_id}
        setting.virtual_mta = target
        setting.save()
        audit.record(
            AuditEntry.Action.UPDATE,
            "default_virtual_mta",
            setting.pk,
            "default VirtualMTA",
            before,
            {"virtual_mta_id": setting.virtual_mta_id},
        )
        return target


def get_default_virtual_mta():
    setting = DefaultVirtualMta.objects.select_related("virtual_mta").filter(id=1).first()
    return setting.virtual_mta if setting else None
