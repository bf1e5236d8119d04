"""The exceptions the package raises on purpose.

Every error a user can cause or meet derives from `LrtError`, so the command
line can print it as one clear message and exit non-zero, without a traceback.
"""


class LrtError(Exception):
    """Base of every error the package reports to a user."""

    exit_code = 1


class ConfigError(LrtError):
    """A configuration file or option is wrong."""


class CredentialsError(LrtError):
    """Credentials are missing or stored unsafely."""


class ServerError(LrtError):
    """The embedded CouchDB server could not be started, found or stopped."""
