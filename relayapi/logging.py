"""Logs as JSON lines on standard error, one object per event, from every source.

structlog renders them: the app's own events (the request line of `relayapi.middleware`) and,
through the same formatter, the standard library's records (Django's, gunicorn's error log via
`deploy/gunicorn.conf.py`). JSON encoding is the escaping: a newline, a quote or a control
character in a path, a header or an exception message comes out as `\\n`, `\\"` or `\\u001b`,
so no input can start a line of its own or forge a field.

Django calls `configure` with `settings.LOGGING` (`LOGGING_CONFIG = "relayapi.logging.configure"`).
"""

import logging.config

import structlog

# Added to every event, whether it comes from structlog or from a standard library logger. The
# context variables carry the request id (bound by the middleware for the length of a request).
_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """A logging.Formatter that renders any record as one line of JSON (ASCII only)."""

    def __init__(self):
        super().__init__(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )


def logging_config(level="INFO"):
    """The `LOGGING` dict: every logger through one JSON handler on standard error."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # Django's defaults give these plain-text handlers of their own; the root's JSON
            # handler replaces them.
            "django": {"handlers": [], "level": level},
            # Every response is already one request line; Django would add a second for each
            # 4xx, and runserver a third. 5xx keep their error record (with the traceback).
            "django.request": {"level": "ERROR"},
            "django.server": {"level": "ERROR"},
        },
    }


def configure(config):
    """Django's LOGGING_CONFIG callable: structlog first, then the standard library's config."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(config)
    # Python's warnings too (e.g. WhiteNoise's about a missing STATIC_ROOT), not as bare text.
    logging.captureWarnings(True)
