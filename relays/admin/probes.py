"""The relay list's "Probe over SMTP" action (relays.probe), for holders of
`relays.probe_relayserver`: editing a relay is not enough, since a probe sends the relay's
credentials to its destination.

A probe waits on a remote server, so no request waits for one long: each selected relay is
probed in a thread of its own, within PROBE_TIMEOUT in all, and the request waits at most
PROBE_WAIT for them before it answers. A probe still running then goes on in the background and
audits its own outcome (the relay's History page shows it). Threads rather than a task queue:
there is no queue here to run one, a probe lasts seconds, and a few at a time are cheap. They are
not daemon threads, so a worker that exits gracefully (gunicorn's graceful_timeout, 30 s, is
longer than a probe) lets them finish and record their outcome first; only a worker killed
outright loses a probe's entry.
"""

import contextvars
import logging
import threading
import time

from django.contrib import admin, messages
from django.db import connections
from django.urls import reverse
from django.utils.html import format_html

from relays import audit, probe
from relays.models import RelayServer

logger = logging.getLogger(__name__)


class ProbeAction:
    """Adds the "Probe over SMTP" action to a ModelAdmin of relay servers."""

    actions = ["probe_relays"]
    # A few at a time, each within PROBE_TIMEOUT; the request waits at most PROBE_WAIT.
    PROBES_AT_ONCE, PROBE_TIMEOUT, PROBE_WAIT = 5, 10.0, 3.0

    def has_probe_permission(self, request):
        return request.user.has_perm("relays.probe_relayserver")

    @admin.action(
        description="Probe over SMTP (connect, EHLO, STARTTLS, AUTH, QUIT)", permissions=["probe"]
    )
    def probe_relays(self, request, queryset):
        """Each probe's outcome as a message; every probe is audited; nothing is sent."""
        # Read afresh with their credentials (the list's queryset reads none), here, before
        # any probe thread starts: the threads touch no database row.
        picked = queryset.order_by("id").values_list("pk", flat=True)[: self.PROBES_AT_ONCE + 1]
        relays = list(RelayServer.objects.filter(pk__in=list(picked)).order_by("id"))
        if len(relays) > self.PROBES_AT_ONCE:
            self.message_user(
                request,
                f"Select at most {self.PROBES_AT_ONCE} relay servers to probe at once.",
                messages.ERROR,
            )
            return
        with audit.acting("admin", request):
            runs = [_Run(relay, self.PROBE_TIMEOUT) for relay in relays]
            until = time.monotonic() + self.PROBE_WAIT
            for run in runs:
                result = run.collect(until)
                if result is None:
                    self.message_user(request, self._still_running(run.relay), messages.WARNING)
                    continue
                probe.record(result)
                self.message_user(
                    request,
                    format_html(
                        "Probe of {}: {}<pre>{}</pre>",
                        run.relay.name,
                        result.verdict,
                        # Lines, not list items: each <li> of the admin's message list gets the
                        # success tick, and a failed step must not carry one.
                        "\n".join(str(step) for step in result.steps),
                    ),
                    messages.SUCCESS if result.ok else messages.ERROR,
                )

    def _still_running(self, relay):
        history = reverse(f"{self.admin_site.name}:relays_relayserver_history", args=[relay.pk])
        return format_html(
            'Probe of {}: still running after {} s; its outcome will be in <a href="{}">the '
            "relay's history</a>.",
            relay.name,
            f"{self.PROBE_WAIT:g}",
            history,
        )


class _Run:
    """One relay's probe in a thread of its own. Whoever sees it end records it: the request,
    when it ends within the wait; the thread itself, once the request has stopped waiting."""

    def __init__(self, relay, timeout):
        self.relay, self.timeout = relay, timeout
        self.result, self.abandoned = None, False
        self.lock, self.ended = threading.Lock(), threading.Event()
        # The request's audit actor (a contextvar) goes with the probe into its thread.
        context = contextvars.copy_context()
        threading.Thread(
            target=context.run, args=(self._probe,), name=f"probe of relay {relay.pk}"
        ).start()

    def _probe(self):
        try:
            result = probe.probe(self.relay, timeout=self.timeout)
        except Exception:
            logger.exception("probe of relay server %s failed", self.relay.pk)
            result = probe.Probe(self.relay, self.timeout, port=self.relay.destination_port)
            result.steps.append(probe.Step("probe", False, 0.0, "internal error (see the log)"))
        with self.lock:
            self.result, record = result, self.abandoned
        self.ended.set()
        if record:
            try:
                probe.record(result)
            except Exception:
                logger.exception("probe of relay server %s not audited", self.relay.pk)
            finally:
                connections.close_all()  # this thread's own connections

    def collect(self, until):
        """The result, when the probe ends before `until` (a time.monotonic()); None when it
        goes on, and then records itself."""
        self.ended.wait(max(until - time.monotonic(), 0))
        with self.lock:
            self.abandoned = self.result is None
            return self.result
