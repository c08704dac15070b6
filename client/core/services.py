"""The client core put together: one place that builds every service from settings and wires
them to each other. Used by the tray app and the command line alike."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from dataclasses import dataclass, field

from client.core.alert_stream import AlertStream, StreamPhase, StreamState
from client.core.answers import Answers
from client.core.auth import Account, Authenticator
from client.core.cache import Cache
from client.core.content_trust import ContentTrust
from client.core.errors import SettingsError
from client.core.hub_client import HubClient
from client.core.hub_route import RouteChange
from client.core.network import Fingerprint, NetworkWatcher
from client.core.opened import OpenedContent
from client.core.outbox import Outbox
from client.core.paths import AppPaths
from client.core.profile_lock import ProfileLock
from client.core.receipts import Receipts
from client.core.settings import Settings
from client.core.sign_out_queue import PendingSignOuts
from client.core.surveys import FILENAME as SURVEYS_FILENAME
from client.core.surveys import SurveyError, SurveyQueue
from client.core.sync import ConnectionState, SyncEngine, SyncStatus
from client.core.token_vault import TokenVault
from client.core.vpn import VpnMonitor, VpnStatus
from client.core.vpn_gate import OPEN, VpnGate, vpn_gate

log = logging.getLogger(__name__)

# Beside the cache and the outbox: every Vigil process of this profile rotates the sign-in's
# refresh token inside this file's lock.
SESSION_LOCK_FILE = "session.lock"


@dataclass
class CoreServices:
    """Every core service of one running client; `start` runs the background work, `close`
    stops it all in reverse order of construction."""

    paths: AppPaths
    settings: Settings
    hub: HubClient
    vault: TokenVault
    auth: Authenticator
    cache: Cache
    outbox: Outbox
    sync: SyncEngine
    alert_stream: AlertStream
    vpn: VpnMonitor
    network: NetworkWatcher
    # The signed-in user's answers (this computer's and the hub's), delivery receipts, and the
    # content versions they opened for an alert: what the alert desk reads and reports.
    answers: Answers
    receipts: Receipts
    opened_content: OpenedContent
    _closers: list[Callable[[], object]] = field(default_factory=list, repr=False)
    _started: bool = field(default=False, repr=False)
    _hub_work_started: bool = field(default=False, repr=False)
    _vpn_seen: bool = field(default=False, repr=False)
    _last_vpn: bool | None = field(default=None, repr=False)
    _last_sync_state: ConnectionState | None = field(default=None, repr=False)
    _last_stream_phase: StreamPhase | None = field(default=None, repr=False)
    _gate: VpnGate = field(default=OPEN, repr=False)
    # None when the survey file cannot be used: surveys are never worth stopping alerts for.
    surveys: SurveyQueue | None = None

    @property
    def vpn_gate(self) -> VpnGate:
        """What the policy's VPN rule allows now (library, sign-in and sync)."""
        return self._gate

    @classmethod
    def build(cls, paths: AppPaths, settings: Settings) -> CoreServices:
        """Build every service; raises a typed error (e.g. no hub address, cache unusable)."""
        hub_urls = settings.hub_addresses()
        if not hub_urls:
            raise SettingsError(
                "Vigil has no hub address yet. Sign in with the hub address your IT team gave "
                "you, or ask IT to set hub_url in the policy file."
            )
        paths.make_private()
        closers: list[Callable[[], object]] = []
        try:
            hub = HubClient(
                hub_urls,
                ca_bundle=settings.get("ca_bundle"),
                allow_plain_http=bool(settings.get("allow_plain_http")),
            )
            closers.append(hub.close)
            vault = TokenVault(hub.base_url)
            auth = Authenticator(
                hub,
                vault,
                device_id=str(settings.get("device_id")),
                device_name=platform.node() or "this computer",
                profile_lock=ProfileLock(paths.data_dir / SESSION_LOCK_FILE),
            )
            auth.offline_sign_outs = PendingSignOuts.for_hub(hub)
            trust = ContentTrust(paths.content_keys_file, settings.get("content_key_id"))
            cache = Cache.open(paths.cache_db, trust)
            closers.append(cache.close)
            opened_content = OpenedContent(cache, auth.current_username)
            last_user = settings.get("last_username")
            outbox = Outbox.open(
                paths.outbox_db,
                legacy_owner=last_user if isinstance(last_user, str) else None,
                opened_lookup=opened_content.for_alert,
            )
            closers.append(outbox.close)
            answers = Answers(cache, outbox, auth.current_username)
            receipts = Receipts(cache, auth.current_username)
            surveys = _open_surveys(paths)
            if surveys is not None:
                closers.append(surveys.close)
            alert_stream = AlertStream(hub, cache, current_user=auth.current_username)
            sync = SyncEngine(
                hub,
                cache,
                outbox,
                verifier_factory=trust.choose,
                session=auth,
                alert_catch_up=alert_stream.catch_up,
                interval=60.0 * int(settings.get("sync_interval_minutes")),
                surveys=surveys,
            )
            vpn = VpnMonitor(settings.vpn_rules(), hub=hub)
            network = NetworkWatcher()
        except BaseException:
            for close in reversed(closers):
                close()
            raise
        services = cls(
            paths,
            settings,
            hub,
            vault,
            auth,
            cache,
            outbox,
            sync,
            alert_stream,
            vpn,
            network,
            answers,
            receipts,
            opened_content,
            closers,
        )
        services.surveys = surveys
        services._gate = vpn_gate(settings.vpn_mode(), None)
        hub.request_gate = services._check_request
        auth.signed_in.connect(services._on_signed_in)
        auth.signed_out.connect(services._on_signed_out)
        # A cached item that fails verification was removed: fetch it again now.
        cache.damaged.connect(lambda _item: sync.request_sync())
        # A receipt is sent as soon as it is queued, when the hub can be reached.
        alert_stream.receipts_queued.connect(lambda _count: sync.request_flush())
        receipts.queued.connect(lambda _count: sync.request_flush())
        vpn.changed.connect(services._on_vpn_changed)
        network.changed.connect(services._on_network_changed)
        sync.status_changed.connect(services._on_sync_status)
        alert_stream.state_changed.connect(services._on_stream_state)
        hub.route.changed.connect(services._on_route_changed)
        return services

    def start(self) -> None:
        """Start background work: the VPN monitor and network watcher at once; syncing and the
        alert stream once someone is signed in (or now, when someone already is)."""
        if self._started:
            return
        self._started = True
        self.vpn.start()
        self._closers.append(self.vpn.stop)
        self.network.start()
        self._closers.append(self.network.stop)
        if self.auth.account is not None:
            self._start_hub_work()

    def _start_hub_work(self) -> None:
        # Started only with a sign-in, so a start-up that resumes from the keyring never shows
        # "sign-in needed" for the moment before the resume lands.
        if self._hub_work_started:
            return
        self._hub_work_started = True
        self.sync.start()
        self._closers.append(self.sync.stop)
        self.alert_stream.start()
        self._closers.append(self.alert_stream.stop)

    def close(self) -> None:
        """Stop everything, newest first; safe to call twice."""
        closers, self._closers = self._closers, []
        for close in reversed(closers):
            try:
                close()
            except Exception:
                # Shutting down must reach every service even when one fails to stop.
                log.exception("stopping %r failed", close)

    def _on_signed_in(self, account: Account) -> None:
        self.sync.user_changed()
        if not self._started:
            return
        if not self._hub_work_started:
            self._start_hub_work()
            return
        self.sync.request_sync()
        self.alert_stream.resume()

    def _on_signed_out(self, _reason: str) -> None:
        self.sync.user_changed()

    def _check_request(self, path: str) -> None:
        self._gate.check_request(path)

    def _on_vpn_changed(self, status: VpnStatus) -> None:
        was_open = self._gate.hub_open
        self._gate = vpn_gate(self.settings.vpn_mode(), status)
        if self._gate.hub_open and not was_open and self._hub_work_started:
            # Block mode let go: the sync that waited for the VPN runs now.
            self.sync.network_changed()
        changed = self._vpn_seen and status.on != self._last_vpn
        self._vpn_seen, self._last_vpn = True, status.on
        # The first decision is not a change of network; later ones are, and routes may differ.
        if changed and self._started:
            self.sync.network_changed()
            self.alert_stream.network_changed()

    def _on_route_changed(self, _change: RouteChange) -> None:
        # Every request follows the address in use by itself; only a stream still open on the
        # old one (the preferred answering again, or a sync that found the old one failing) is
        # moved, with its Last-Event-ID. Its reconnection then syncs (see _on_stream_state), so
        # acks waiting for the hub go at once. Nothing here retries a failure: with every address
        # down that would be a retry storm.
        if self._hub_work_started:
            self.alert_stream.address_changed()

    def _on_network_changed(self, _fingerprint: Fingerprint) -> None:
        if not self._started:
            return
        # A new network may reach the preferred hub address again: look now.
        self.hub.route.probe_now()
        log.info("The network changed; syncing and reconnecting now")
        self.sync.network_changed()
        self.alert_stream.network_changed()
        self.vpn.check()

    def _on_sync_status(self, status: SyncStatus) -> None:
        # The hub answering sync again means the stream's backoff wait is now pointless; a
        # stream that is connected is left alone.
        came_back = (
            self._last_sync_state is not None
            and self._last_sync_state is not ConnectionState.ONLINE
            and status.state is ConnectionState.ONLINE
        )
        self._last_sync_state = status.state
        if status.state is ConnectionState.ONLINE:
            self.flush_sign_outs()
        if came_back and self._started:
            self.alert_stream.resume()

    def flush_sign_outs(self) -> bool:
        """Revoke on the hub a sign-out made offline, if one waits; True when none waits."""
        username = self.settings.get("last_username")
        offline = self.auth.offline_sign_outs
        if not isinstance(username, str) or offline is None:
            return True
        return offline.flush(username)

    def _on_stream_state(self, state: StreamState) -> None:
        # A stream that reconnects after a drop means the hub is back: flush acks at once.
        reconnected = (
            self._last_stream_phase is not None
            and self._last_stream_phase is not StreamPhase.CONNECTED
            and state.phase is StreamPhase.CONNECTED
        )
        if state.phase is not StreamPhase.CONNECTING:
            self._last_stream_phase = state.phase
        if reconnected and self._started:
            self.sync.request_sync()


def _open_surveys(paths: AppPaths) -> SurveyQueue | None:
    try:
        return SurveyQueue.open(paths.data_dir / SURVEYS_FILENAME)
    except SurveyError as exc:
        log.warning("post-incident surveys are off: %s", exc.message)
        return None
