"""The hub's whole API under schemathesis: generated and mutated requests against the OpenAPI
schema the running hub serves, every default check, and the stateful (linked-call) phase.

The suite runs a reduced number of examples an operation so that it stays quick; the full
defaults (100 examples an operation) run with

    VIGIL_FUZZ_FULL=1 scripts/test tests/security/test_api_fuzz.py

Both must end with 0 failures.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import schemathesis
from click.testing import CliRunner
from schemathesis.cli import schemathesis as schemathesis_cli

from hub.clock import ManualClock
from hub.errors import ApiError
from hub.server import EmbeddedHub
from hub.signin import authenticate
from hub.totp import STEP_SECONDS
from tests.hubtools import DEFAULT_PASSWORD, create_user, sign_in

FULL_RUN = os.environ.get("VIGIL_FUZZ_FULL") == "1"
SUITE_EXAMPLES = 15
SEED = "20261127"
# The SSE stream never ends by design, and schemathesis reads a whole body before checking it;
# its one input (Last-Event-ID) is checked in test_hostile_input.py and tests/hub/test_stream.py.
EXCLUDED_PATHS = ("/v1/alerts/stream",)


SCHEMATHESIS_CONFIG = """
# Keeps schemathesis' cache out of the working tree.
[cache]
enabled = false
directory = "{cache}"

# Account changes: a generated username names no user (404) or a taken one (409), and a
# generated password can be on the blocklist (422), which JSON Schema cannot say. Where several
# entries match an operation the first one counts, and the ones below match every POST.
[[operations]]
include-path-regex = "^/v1/admin/users"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

# Groups: a generated name names no group (404) or a taken one (409); group names and
# usernames have character rules JSON Schema does not carry (422).
[[operations]]
include-path-regex = "^/v1/admin/groups"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

# Incident changes and approvals: a generated id names no alert or request (404), a closed alert
# or a decided request refuses more (409), and text with control characters or a time not in the
# coming week is refused (422).
[[operations]]
include-path-regex = "^/v1/(alerts/[^/]+/(updates|resolve|retract)|approvals/[^/]+/)"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

# Sign-in refuses schema-valid attempts by design: 429 when throttled or locked out (unknown
# usernames lock like known ones), 503 when the password hashing queue is full.
[[operations]]
include-path = "/v1/auth/login"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "422", "429", "503"]

# An alert whose expires_at is already past is refused (422): JSON Schema cannot say "in the
# future", so schema-valid drafts with a past time are rightly refused.
[[operations]]
include-path = "/v1/alerts"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "422"]

# A readiness report's ran_at must lie within a day of the hub's clock, its check names come from
# a fixed list and each detail is one line of plain text: JSON Schema says none of it, so
# schema-valid reports are rightly refused (422 invalid_readiness, naming where).
[[operations]]
include-path = "/v1/readiness"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "422"]

# The report's since and until are RFC 3339 times or dates in a query string, and since must come
# before until: a schema-valid string such as "0" is rightly refused (422 naming the parameter).
[[operations]]
include-path = "/v1/reports/kpis"
include-method = "GET"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422"]
"""


class AdminTokens:
    """Hands schemathesis a live admin access token for every generated call.

    Generated calls include POST /v1/auth/logout, which revokes the token it was sent with, so a
    dead token is replaced by signing in again over HTTP (the clock moves one TOTP step first, as
    each code is accepted once).
    """

    def __init__(self, hub: EmbeddedHub, clock: ManualClock) -> None:
        self._hub = hub
        self._clock = clock
        self._secret = create_user(hub.store, "fuzz-admin", "admin")
        self._lock = threading.Lock()
        self._token = ""
        self.sign_ins = 0

    def current(self) -> str:
        """A token the hub accepts right now."""
        with self._lock:
            if not self._alive():
                self._clock.advance(STEP_SECONDS)
                tokens = sign_in(
                    self._hub.url,
                    "fuzz-admin",
                    DEFAULT_PASSWORD,
                    self._secret,
                    at=self._clock.now(),
                )
                self._token = tokens["access_token"]
                self.sign_ins += 1
            return self._token

    def _alive(self) -> bool:
        if not self._token:
            return False
        try:
            authenticate(self._hub.store, self._hub.settings, access_token=self._token)
        except ApiError:
            return False
        return True


@pytest.fixture
def hub(start_hub: Callable[..., EmbeddedHub]) -> EmbeddedHub:
    """A hub that serves its OpenAPI schema, which schemathesis reads."""
    return start_hub(openapi=True)


@pytest.fixture
def admin_tokens(hub: EmbeddedHub, manual_clock: ManualClock) -> Iterator[AdminTokens]:
    """Registers the token source with schemathesis for one test, and removes it after."""
    tokens = AdminTokens(hub, manual_clock)

    @schemathesis.auth(refresh_interval=None)
    class BearerFromHub:
        def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
            return tokens.current()

        def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    yield tokens
    schemathesis.auths.unregister()


@pytest.mark.slow
def test_the_hub_api_passes_every_schemathesis_check_and_the_stateful_phase(
    hub: EmbeddedHub, admin_tokens: AdminTokens, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG.format(cache=tmp_path / "cache"))
    args = [
        "--config-file",
        str(config),
        "run",
        f"{hub.url}/openapi.json",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--checks",
        "all",
        "--seed",
        SEED,
        "--request-timeout",
        "10",
        "--workers",
        "1",
        *(arg for path in EXCLUDED_PATHS for arg in ("--exclude-path", path)),
    ]
    if not FULL_RUN:
        args += ["--max-examples", str(SUITE_EXAMPLES)]

    result = CliRunner().invoke(schemathesis_cli, args, catch_exceptions=False)
    # The run's summary, for `pytest -rP`.
    print(result.output[-3000:], f"sign-ins after logouts: {admin_tokens.sign_ins - 1}")

    assert result.exit_code == 0, result.output
    assert "Stateful" in result.output, "the stateful phase did not run"
    assert " 0 failures" in result.output or "failures" not in result.output.splitlines()[-1]
