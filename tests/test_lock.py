"""requirements.lock pins the production dependency set that pyproject.toml asks for: a change
to pyproject.toml's `dependencies` without `make lock` fails here. Offline: it reads the two
files (and, for extras such as psycopg[binary], the installed package's own metadata)."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", re.M)
DIRECT = "relayapi (pyproject.toml)"


def parse_lock(text):
    """{name: (version, {what it is there for}, number of hashes)} of a pip-compile output."""
    pins = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        pin = PIN.match(block)
        if pin:
            comments = [line.strip().lstrip("#").strip() for line in block.splitlines()[1:]]
            via = {c.removeprefix("via").strip() for c in comments if c and not c.startswith("-")}
            pins[canonicalize_name(pin[1])] = (pin[2], via - {""}, block.count("--hash=sha256:"))
    return pins


def extra_requirements(requirement):
    """What the extras of `requirement` add (psycopg[binary] -> psycopg-binary), from the
    installed distribution's metadata."""
    if not requirement.extras:
        return []
    found = []
    for line in metadata.requires(requirement.name) or []:
        needed = Requirement(line)
        if (
            needed.marker
            and not needed.marker.evaluate({"extra": ""})
            and any(needed.marker.evaluate({"extra": extra}) for extra in requirement.extras)
        ):
            found.append(needed)
    return found


def disagreements(pyproject_text, lock_text):
    """One sentence per way the lock does not match pyproject.toml; none when it does."""
    wanted = [Requirement(r) for r in tomllib.loads(pyproject_text)["project"]["dependencies"]]
    pins = parse_lock(lock_text)
    problems = []
    for requirement in wanted + [e for r in wanted for e in extra_requirements(r)]:
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is in pyproject.toml but not in requirements.lock")
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"requirements.lock pins {name}=={pins[name][0]}, not {requirement}")
    direct = {canonicalize_name(r.name) for r in wanted}
    for name, (version, via, hashes) in sorted(pins.items()):
        if DIRECT in via and name not in direct:
            problems.append(
                f"requirements.lock pins {name}=={version} for a dependency "
                "pyproject.toml no longer has"
            )
        if not hashes:
            problems.append(f"requirements.lock has no hash for {name}=={version}")
    return problems


def real_files():
    return (ROOT / "pyproject.toml").read_text(), (ROOT / "requirements.lock").read_text()


def test_the_lock_pins_what_pyproject_asks_for_with_hashes():
    pyproject, lock = real_files()

    assert parse_lock(lock)["django"][1] >= {DIRECT}
    assert disagreements(pyproject, lock) == []


def test_a_new_or_narrowed_dependency_without_a_new_lock_is_reported():
    pyproject, lock = real_files()
    changed = pyproject.replace('"Django>=5.2,<6",', '"Django>=6",\n    "requests>=2",')

    assert disagreements(changed, lock) == [
        f"requirements.lock pins django=={parse_lock(lock)['django'][0]}, not Django>=6",
        "requests>=2 is in pyproject.toml but not in requirements.lock",
    ]


def test_a_dependency_dropped_from_pyproject_but_still_locked_is_reported():
    pyproject, lock = real_files()
    version = parse_lock(lock)["whitenoise"][0]

    assert disagreements(pyproject.replace('    "whitenoise>=6.6",\n', ""), lock) == [
        f"requirements.lock pins whitenoise=={version} for a dependency pyproject.toml no "
        "longer has"
    ]


def test_an_extra_whose_package_is_not_locked_is_reported():
    pyproject, lock = real_files()
    without = re.sub(r"\npsycopg-pool==.*?(?=\n[a-z])", "", lock, flags=re.S)

    assert [p for p in disagreements(pyproject, without) if "psycopg-pool" in p] == [
        f"{r} is in pyproject.toml but not in requirements.lock"
        for r in extra_requirements(Requirement("psycopg[binary,pool]"))
        if r.name == "psycopg-pool"
    ]
