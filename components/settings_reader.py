"""Reading Pulumi config: each value checked, every problem collected with its key and fix."""

from __future__ import annotations

import difflib
import re
import urllib.parse
import zoneinfo
from collections.abc import Callable
from typing import Any

import pulumi

from components.settings_checks import Problem, listing_problem
from components.settings_table import SECRET_KEYS
from components.settings_types import Resources
from names import PROJECT

# re.ASCII everywhere: \d would otherwise accept digits of every script ("١٢٣").
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.ASCII)
_CLOUDFLARE_ID = re.compile(r"^[0-9a-f]{32}$", re.ASCII)
_CPUS = re.compile(r"^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$", re.ASCII)
_MEMORY = re.compile(r"^(\d+)([MG])-(\d+)([MG])$", re.ASCII)
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$", re.ASCII)
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_TARGET = re.compile(r"^[a-z0-9][a-z0-9_.-]*:(\d{1,5})$", re.ASCII)
# Swarm's placement attributes (docs.docker.com/engine/swarm/services/#placement-constraints).
_CONSTRAINT = re.compile(
    r"^(node\.id|node\.hostname|node\.role|node\.platform\.os|node\.platform\.arch|node\.labels\.[A-Za-z0-9_.-]+|"
    r"engine\.labels\.[A-Za-z0-9_.-]+)\s*(==|!=)\s*[A-Za-z0-9_.-]+$",
    re.ASCII,
)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$", re.ASCII)
_HOST_PATH = re.compile(r"^(/[A-Za-z0-9_.@+-]+)+$", re.ASCII)
_CONFIG_FILE = re.compile(r"^[A-Za-z0-9_.-]+\.conf$", re.ASCII)
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_CRON_NAMES = {
    "month": {m: i for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)},
    "day of week": {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])},
}
class SettingsError(pulumi.RunError):
    """The stack's configuration is invalid. Pulumi shows the message without a traceback."""



class _Reader:
    """Reads the declared settings (components/settings_table.py), applying their defaults, and collects problems."""

    def __init__(self, config: pulumi.Config, declared: dict[str, dict[str, Any]]) -> None:
        self._config = config
        self._declared = declared
        self.problems: list[str] = []

    def problem(self, key: str, what: str, fix: str) -> None:
        self.problems.append(f"{PROJECT}:{key}: {what}. Fix: {fix}")

    def report(self, key: str, found: Problem) -> None:
        """Record what a check of components/settings_checks.py found, if anything."""
        if found is not None:
            self.problem(key, *found)

    def _raw(self, key: str) -> str | None:
        if key not in self._declared:
            raise KeyError(f"{key} is read by the program but not declared in Pulumi.yaml")
        value = self._config.get(key)
        return self._default(key) if value is None else value

    def is_set(self, key: str) -> bool:
        """Whether the stack sets `key` to other than its default. (The engine passes the defaults
        of Pulumi.yaml to the program as values, so "present" alone would mean nothing.)"""
        value = self._config.get(key)
        return value is not None and value != self._default(key)

    def _default(self, key: str) -> str | None:
        if "default" not in self._declared.get(key, {}):
            return None
        default = self._declared[key]["default"]
        return str(default).lower() if isinstance(default, bool) else str(default)

    def string(self, key: str, example: str = "<value>") -> str:
        value = self._raw(key)
        if value is None:
            self.problem(key, "is required", f"pulumi config set {PROJECT}:{key} {example}")
            return ""
        return value.strip()

    def integer(self, key: str, minimum: int, maximum: int = 2**31) -> int:
        value = self.string(key)
        try:
            if not re.fullmatch(r"-?[0-9]+", value, re.ASCII):
                raise ValueError(value)
            number = int(value)
        except ValueError:
            self.problem(key, f"{value!r} is not a whole number", f"pulumi config set {PROJECT}:{key} {minimum}")
            return minimum
        if not minimum <= number <= maximum:
            self.outside(key, str(number), f"{minimum}..{maximum}", f"<a number from {minimum} to {maximum}>")
        return number

    def outside(self, key: str, value: str, bounds: str, example: str) -> None:
        self.problem(key, f"{value} is outside {bounds}", f"pulumi config set {PROJECT}:{key} {example}")

    def boolean(self, key: str) -> bool:
        value = self.string(key).lower()
        if value not in ("true", "false"):
            self.problem(key, f"{value!r} is not true or false", f"pulumi config set {PROJECT}:{key} true")
        return value == "true"

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.string(key, allowed[0])
        if value == "" and "" not in allowed:
            self.problem(key, "is required", f"pulumi config set {PROJECT}:{key} {allowed[0]}")
        elif value not in allowed:
            shown = ", ".join(repr(a) if a == "" else a for a in allowed)
            self.problem(key, f"{value!r} is not one of {shown}", f"pulumi config set {PROJECT}:{key} {allowed[-1]}")
        return value

    def matching(self, key: str, pattern: re.Pattern[str], example: str, optional: bool = False) -> str:
        """A value the pattern accepts; empty only when `optional` (empty then means "none")."""
        value = self.string(key, example)
        if not value and not optional:
            self.problem(key, "is empty", f"pulumi config set {PROJECT}:{key} {example} (or pulumi config rm {PROJECT}:{key} for the default)")
        elif value and not pattern.match(value):
            self.problem(key, f"{value!r} is not valid (e.g. {example})", f"pulumi config set {PROJECT}:{key} {example}")
        return value

    def duration(self, key: str, example: str, minimum_seconds: float, maximum_seconds: float) -> str:
        """A Prometheus-style duration (30s, 15d) within what its consumer accepts."""
        value = self.matching(key, _DURATION, example)
        match = _DURATION.match(value)
        if match:
            seconds = int(match[1]) * _DURATION_SECONDS[match[2]]
            if not minimum_seconds <= seconds <= maximum_seconds:
                self.outside(key, value, f"{_shown(minimum_seconds)}..{_shown(maximum_seconds)}", example)
        return value

    def cron(self, key: str, example: str) -> str:
        """Five cron fields (minute hour day-of-month month day-of-week), each within its range."""
        value = self.string(key, example)
        fields = value.split()
        if len(fields) != len(_CRON_FIELDS):
            self.problem(key, f"{value!r} needs 5 fields: minute hour day-of-month month day-of-week", f"pulumi config set {PROJECT}:{key} {example}")
            return value
        for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
            if not _cron_field_ok(text, low, high, _CRON_NAMES.get(name, {})):
                self.problem(key, f"{name} {text!r} is not within {low}-{high} (in {value!r})", f"pulumi config set {PROJECT}:{key} {example}")
        return value

    def listing(self, key: str, pattern: re.Pattern[str], example: str, required: bool = False) -> tuple[str, ...]:
        raw = self.string(key)
        items = tuple(item.strip() for item in raw.split(",") if item.strip())
        self.report(key, listing_problem(key, raw, example))
        if required and not items:
            self.problem(key, "is empty", f"pulumi config set {PROJECT}:{key} {example}")
        bad = [item for item in items if not pattern.match(item)]
        if bad:
            self.problem(
                key, f"{', '.join(bad)} not valid (e.g. {example})", f"pulumi config set {PROJECT}:{key} {example}"
            )
        return items

    def resources(self, cpus_key: str, memory_key: str) -> Resources:
        cpus, memory = self.string(cpus_key), self.string(memory_key)
        try:
            return Resources.parse(cpus, memory)
        except ValueError as error:
            self.problem(
                f"{cpus_key}/{memory_key}",
                str(error),
                f"pulumi config set {PROJECT}:{cpus_key} 0.10-0.50 && pulumi config set {PROJECT}:{memory_key} 256M-512M",
            )
            return Resources(0.1, 64, 64, 1024 * 1024)  # the widest bounds: no consequential problems

    def secret(self, key: str, check: Callable[[str, str], Problem] | None = None) -> pulumi.Output[str] | None:
        """A secret key (never declared in Pulumi.yaml); None when it is not set. `check` sees the
        value here only, and its message never quotes it."""
        value = self._config.get(key)
        if value is None:
            return None
        if not value.strip():
            self.problem(key, "is empty", f"pulumi config set --secret {PROJECT}:{key} <value> (or pulumi config rm {PROJECT}:{key})")
        elif check is not None:
            self.report(key, check(key, value))
        return self._config.require_secret(key)

    def timezone(self, key: str, example: str) -> str:
        """A name of the tz database (what TZ and Grafana's timezone accept)."""
        value = self.matching(key, re.compile(r"^[A-Za-z0-9_+/-]+$", re.ASCII), example)
        if value and value not in zoneinfo.available_timezones():
            self.problem(key, f"{value!r} is not a time zone of the tz database", f"pulumi config set {PROJECT}:{key} {example}")
        return value

    def secret_names(self, key: str, lines: Callable[[str], list[tuple[str, str]]]) -> tuple[str, ...]:
        """The names a NAME=value secret holds (known before any resource; the values stay secret)."""
        return tuple(name for name, _ in lines(self._config.get(key) or ""))

    def check_keys(self, stack: str, configured: set[str], secret: set[str]) -> None:
        """Every key of the project's namespace is one we read, and secrets are stored as secrets."""
        known = [*self._declared, *SECRET_KEYS]
        for full in sorted(configured):
            namespace, _, key = full.partition(":")
            if namespace != PROJECT:
                continue
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.problem(key, f"is not a setting of this program{hint}", f"pulumi config rm {PROJECT}:{key} -s {stack}")
            elif key in SECRET_KEYS and full not in secret:
                self.problem(
                    key,
                    f"is stored in plain text in Pulumi.{stack}.yaml",
                    f"pulumi config set --secret {PROJECT}:{key} <value> -s {stack} (it replaces the plain value)",
                )

    def url(self, key: str, example: str) -> str:
        """An http(s) URL with a host, or empty."""
        value = self.string(key, example)
        if value:
            parsed = urllib.parse.urlsplit(value)
            try:
                parsed.port  # noqa: B018 (raises on a bad port)
                valid = parsed.scheme in ("http", "https") and bool(parsed.hostname) and value.isascii() and " " not in value
            except ValueError:
                valid = False
            if not valid:
                self.problem(key, f"{value!r} is not an http(s) URL", f"pulumi config set {PROJECT}:{key} {example}")
        return value

    def wrong_stack_keys(self, keys: tuple[str, ...], belongs: str, stack: str) -> None:
        """Each of `keys` that is set belongs to other stacks (`belongs`) than `stack`."""
        for key in keys:
            if self.is_set(key):
                self.problem(key, f"applies to the {belongs} only, not to stack '{stack}'", f"pulumi config rm {PROJECT}:{key} -s {stack}")

    def require_secret(self, key: str, reason: str, what: str) -> pulumi.Output[str] | None:
        value = self.secret(key)
        if value is None:
            self.problem(key, f"is required {reason}", f"pulumi config set --secret {PROJECT}:{key} <{what}>")
        return value


def _shown(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= _DURATION_SECONDS[unit] and seconds % _DURATION_SECONDS[unit] == 0:
            return f"{int(seconds // _DURATION_SECONDS[unit])}{unit}"
    return f"{seconds:g}s"


def _cron_field_ok(text: str, low: int, high: int, names: dict[str, int]) -> bool:
    def number(part: str) -> int | None:
        if part.upper() in names:
            return names[part.upper()]
        return int(part) if re.fullmatch(r"[0-9]{1,2}", part, re.ASCII) else None

    for item in text.split(","):
        base, _, step = item.partition("/")
        if step and (not re.fullmatch(r"[0-9]{1,2}", step, re.ASCII) or int(step) == 0):
            return False
        if base == "*":
            continue
        bounds = [number(part) for part in base.split("-", 1)]
        if any(b is None or not low <= b <= high for b in bounds) or (len(bounds) == 2 and bounds[0] > bounds[1]):  # type: ignore[operator]
            return False
    return True


def configured_keys() -> tuple[set[str], set[str]]:
    """(every config key the stack sets, the secret ones), as the Pulumi runtime holds them. The SDK
    has no public way to list them; this is the one place that reads its internals."""
    from pulumi.runtime import config as runtime_config

    keys = set(runtime_config.get_config_env()) | set(runtime_config.CONFIG.get())
    secret = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return keys, secret


