"""One attacker of scenario 4 (scenario_passwords.py), a process of its own so that the probe
shares no interpreter (no GIL) with it. It sends GreenArrow requests from one source address,
each as soon as the last was answered, until its time is up, and prints the statuses of its
answers as JSON. MODE says which:

- retry: a wrong Basic password for a new made-up username each time; after a 429 it waits the
  Retry-After asked for, as HTTP clients with retries do;
- flood: the same, never waiting;
- plain: the same requests without credentials, never waiting: a flood of requests that need no
  password check, to compare a password flood with.

    python attacker.py PORT SOURCE_ADDRESS SECONDS MODE
"""

import base64
import http.client
import json
import secrets
import sys
import time

GA = "/ga/api/v3/eng"
MODES = ("retry", "flood", "plain")


def get(port, path, source, headers=None, timeout=30):
    """(status or None, seconds, Retry-After or None) of one GET on a connection of its own
    from `source`."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0)
    )
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started, response.getheader("Retry-After")
    except (OSError, http.client.HTTPException):
        return None, time.perf_counter() - started, None
    finally:
        connection.close()


def basic(username, password):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def attack(port, source, seconds, mode):
    counts = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        guess = None
        if mode != "plain":
            guess = basic(f"guess-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
        status, _, retry_after = get(port, f"{GA}/relay_servers", source, guess)
        counts[str(status)] = counts.get(str(status), 0) + 1
        if status == 429 and retry_after and mode == "retry":
            time.sleep(min(float(retry_after), max(0.0, deadline - time.monotonic())))
    print(json.dumps(counts))


if __name__ == "__main__":
    port, source, seconds, mode = sys.argv[1:5]
    if mode not in MODES:
        sys.exit(f"attacker.py: MODE is one of {', '.join(MODES)}, not {mode!r}")
    attack(int(port), source, float(seconds), mode)
