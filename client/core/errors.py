"""Typed errors of the client core: every failure a caller can act on has its own class.

Each carries a message written for the agent (what happened and what to do) and never a secret.
"""

from __future__ import annotations


class VigilError(Exception):
    """Base of every error the client core raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HubError(VigilError):
    """Talking to the hub failed."""


class HubOffline(HubError):
    """The hub could not be reached (no network, refused, DNS failure, timeout)."""


class UntrustedCertificate(HubOffline):
    """The hub's TLS certificate is not trusted here (or the secure connection failed)."""


class HubAddressError(HubError):
    """The hub address is unusable: not a URL, or plain http to a host that is not this computer."""


class AuthRequired(HubError):
    """The hub wants a sign-in: no token, or the token was refused and could not be refreshed."""

    def __init__(self, message: str, code: str = "auth_required") -> None:
        super().__init__(message)
        self.code = code


class InvalidCredentials(AuthRequired):
    """Wrong username or password."""


class InvalidCode(AuthRequired):
    """Wrong, stale or replayed authenticator code, or an expired sign-in step."""


class LockedOut(HubError):
    """Too many failed sign-ins: the account is locked for `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerError(HubError):
    """The hub answered with a 5xx status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RequestRefused(HubError):
    """The hub refused the request (a 4xx other than auth), with its error code."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class BadResponse(HubError):
    """The hub's answer was not what the protocol says (not JSON, wrong shape, cut short)."""


class KeyringUnavailable(VigilError):
    """No usable OS keyring (no backend, or a locked collection)."""


class PolicyError(VigilError):
    """The IT policy file is malformed; the app must not start with it."""


class SettingsError(VigilError):
    """A setting could not be changed: unknown, locked by IT policy, or an invalid value."""


class CacheError(VigilError):
    """The local cache could not be opened or written."""


class OutboxError(VigilError):
    """An acknowledgement could not be recorded on disk: the UI must not say it was."""


class AutostartError(VigilError):
    """The start-at-login entry could not be written or removed."""


class SignatureError(VigilError):
    """Content whose signature does not verify with the pinned key."""


class ReleaseSignatureError(VigilError):
    """A release file, checksum list or update manifest whose minisign signature is unusable:
    malformed, by another key, or not matching the data."""


class UpdateError(VigilError):
    """An update was refused or could not be fetched; the running version stays as it is."""


class UpdateRefused(UpdateError):
    """The update manifest must not be acted on: its signature fails, or it is expired, not
    newer, for another platform, or older than one already seen."""


class UpdateDownloadError(UpdateError):
    """The update file could not be fetched whole and intact (size, hash, time limit, network)."""
