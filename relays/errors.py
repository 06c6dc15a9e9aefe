"""Domain errors raised by the write services; each door renders them in its own words.

A refusal is data: a list of `Problem`s, each the field it concerns in the domain's terms (a
model field name such as `destination_hostname`; None when it spans fields or concerns a part
of a routing rule) and what is wrong with it (`must start and end with a letter or number`).
`messages` is how the GreenArrow API has always said them (`destination.hostname must ...`,
byte for byte), built from the problems with the model's API_PATHS; the Mail Manager API says
them with its member names (`ServerName must ...`), the admin puts each at its form field.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    field: str | None  # a model field name; None: the sentence stands alone
    text: str  # with a field, what is wrong with it; without, the whole sentence

    def sentence(self, names=None):
        """The problem in one sentence, the field called by `names` (model field -> a door's
        name for it; a field it lacks keeps its own name)."""
        if self.field is None:
            return self.text
        return f"{(names or {}).get(self.field, self.field)} {self.text}"


class RelayError(Exception):
    """A refused request: `problems`, and `messages`, one GreenArrow sentence per problem."""

    def __init__(self, messages, names=None):
        if isinstance(messages, str | Problem):
            messages = [messages]
        self.problems = [m if isinstance(m, Problem) else Problem(None, m) for m in messages]
        self.messages = [p.sentence(names) for p in self.problems]
        super().__init__("; ".join(self.messages))

    def sentences(self, names):
        """The problems as another door says them: `names` maps model fields to its names."""
        return [p.sentence(names) for p in self.problems]


class InvalidRequest(RelayError):
    """The request itself is malformed: not JSON, a missing root key, an unknown attribute."""


class ValidationFailed(RelayError):
    """A field breaks a rule; nothing was written."""


class NameTaken(ValidationFailed):
    """The name is already used by a VirtualMTA of any type (case-insensitive)."""


class QuotaExceeded(ValidationFailed):
    """A configured limit on the number of records is reached."""


class InUse(RelayError):
    """A delete refused because other records refer to this one; one message per referrer."""


class Forbidden(RelayError):
    """The caller may not do this, whatever the request says (e.g. a key for someone else)."""


class Stale(RelayError):
    """The write named the version of the record it was based on, and the record has been
    written since: nothing was changed (a lost update refused)."""


class NotFound(RelayError):
    """No such record."""
