"""The SQL of the KPI report: delivery, answers, surveys, updates and reachability, aggregated in
SQLite; only the answer percentiles are read from one sorted list of answer delays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.storage.db import Dialects, Statement, postgres_only

if TYPE_CHECKING:
    from hub.storage.db import Connection, Database

# An agent's stream counts as live while a hub process saw it this recently (as GET /v1/agents).
LIVE_STREAM_SECONDS = 45.0

# Indexes the report's reads need: each target's first answer (until FIRSTS_SCHEMA keeps it on
# the target and drops this index), each alert's updates in order, and a period's live or drill
# alerts.
SCHEMA: list[str] = [
    "CREATE INDEX alert_acks_first_answer ON alert_acks (alert_id, username, acted_at_ms, action)",
    "CREATE INDEX alert_changes_kind ON alert_changes (alert_id, kind, number)",
    "CREATE INDEX alerts_report ON alerts (drill, issued_at)",
]


def _packed_answer(row: str) -> str:
    """SQL packing an answer `row` as acted_at_ms * 4 + its action's code: the MIN of packed
    answers is the earliest (ties to the lower code), and >> 2 and & 3 take it apart again."""
    return (
        f"{row}acted_at_ms * 4 + "
        f"CASE {row}action WHEN 'acknowledged' THEN 0 WHEN 'escalated' THEN 1 ELSE 2 END"
    )


# Each target's earliest receipt and first answer, kept on its alert_targets row by the database
# itself, so the report reads them with the targets instead of looking them up per target, and no
# writer's code has to know. Receipt times only ever go down (the receipt store keeps the MIN of
# what each device reports), so every trigger only lowers. alert_targets' key is (alert_id,
# username) NOCASE: each trigger's UPDATE is one index seek, and a receipt or answer from a user
# the alert did not target updates nothing, as the report counts targets only. Purging an alert
# deletes its targets, receipts and answers together.
FIRSTS_SCHEMA: list[Statement] = [
    "ALTER TABLE alert_targets ADD COLUMN first_received_ms INTEGER",
    "ALTER TABLE alert_targets ADD COLUMN first_answer INTEGER",
    """
    UPDATE alert_targets SET first_received_ms = r.first
    FROM (
        SELECT alert_id, username, MIN(received_at_ms) AS first FROM alert_receipts
        GROUP BY alert_id, username
    ) r
    WHERE alert_targets.alert_id = r.alert_id AND alert_targets.username = r.username
    """,
    # Answers hold the account's stored spelling of the username; grouped and matched without
    # regard to case, as the triggers below match them.
    f"""
    UPDATE alert_targets SET first_answer = a.first
    FROM (
        SELECT alert_id, username COLLATE NOCASE AS username,
            MIN({_packed_answer("")}) AS first
        FROM alert_acks GROUP BY 1, 2
    ) a
    WHERE alert_targets.alert_id = a.alert_id AND alert_targets.username = a.username
    """,
    # The report no longer looks first answers up; every answer written would still pay for it.
    "DROP INDEX alert_acks_first_answer",
    # PostgreSQL's triggers run a function: one per kind of first, shared by insert and update.
    postgres_only(
        """
        CREATE FUNCTION alert_receipts_first() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE alert_targets SET first_received_ms = NEW.received_at_ms
            WHERE alert_id = NEW.alert_id AND username = NEW.username
                AND (first_received_ms IS NULL OR first_received_ms > NEW.received_at_ms);
            RETURN NULL;
        END
        $$
        """
    ),
    postgres_only(
        f"""
        CREATE FUNCTION alert_acks_first_answer() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE alert_targets SET first_answer = {_packed_answer("NEW.")}
            WHERE alert_id = NEW.alert_id AND username = NEW.username
                AND (first_answer IS NULL OR first_answer > {_packed_answer("NEW.")});
            RETURN NULL;
        END
        $$
        """
    ),
    Dialects(
        sqlite="""
        CREATE TRIGGER alert_receipts_first_insert AFTER INSERT ON alert_receipts
        BEGIN
            UPDATE alert_targets SET first_received_ms = NEW.received_at_ms
            WHERE alert_id = NEW.alert_id AND username = NEW.username
                AND (first_received_ms IS NULL OR first_received_ms > NEW.received_at_ms);
        END
        """,
        postgresql="CREATE TRIGGER alert_receipts_first_insert AFTER INSERT ON alert_receipts "
        "FOR EACH ROW EXECUTE FUNCTION alert_receipts_first()",
    ),
    Dialects(
        sqlite="""
        CREATE TRIGGER alert_receipts_first_update AFTER UPDATE OF received_at_ms ON alert_receipts
        BEGIN
            UPDATE alert_targets SET first_received_ms = NEW.received_at_ms
            WHERE alert_id = NEW.alert_id AND username = NEW.username
                AND (first_received_ms IS NULL OR first_received_ms > NEW.received_at_ms);
        END
        """,
        postgresql="CREATE TRIGGER alert_receipts_first_update AFTER UPDATE OF received_at_ms "
        "ON alert_receipts FOR EACH ROW EXECUTE FUNCTION alert_receipts_first()",
    ),
    Dialects(
        sqlite=f"""
        CREATE TRIGGER alert_acks_first_answer AFTER INSERT ON alert_acks
        BEGIN
            UPDATE alert_targets SET first_answer = {_packed_answer("NEW.")}
            WHERE alert_id = NEW.alert_id AND username = NEW.username
                AND (first_answer IS NULL OR first_answer > {_packed_answer("NEW.")});
        END
        """,
        postgresql="CREATE TRIGGER alert_acks_first_answer AFTER INSERT ON alert_acks "
        "FOR EACH ROW EXECUTE FUNCTION alert_acks_first_answer()",
    ),
]

# One row per (alert, target) of the period's alerts, restricted to the group's members when a
# group is asked for: each target's earliest receipt, first answer and survey answer. Delays are
# floored at 0, as receipts and answers carry the device's clock, which may run behind the hub's.
_FACTS = """
WITH
chosen AS MATERIALIZED (
    SELECT seq, id, issued_at FROM alerts
    WHERE drill = :drill AND issued_at >= :since AND issued_at < :until
),
-- Each target's earliest receipt and first answer (packed as _packed_answer packs it) are kept on
-- its alert_targets row by FIRSTS_SCHEMA's triggers: read with the target, no lookup per target.
facts AS MATERIALIZED (
    SELECT
        c.seq,
        t.username,
        MAX(t.first_received_ms / 1000.0 - c.issued_at, 0.0) AS delivery,
        MAX((t.first_answer >> 2) / 1000.0 - c.issued_at, 0.0) AS answer,
        t.first_answer & 3 AS action,
        v.clarity,
        v.templates
    FROM chosen c JOIN alert_targets t ON t.alert_id = c.id
    LEFT JOIN survey_answers v ON v.alert_id = t.alert_id AND v.username = t.username
    WHERE :grp IS NULL OR EXISTS (
        SELECT 1 FROM group_members m WHERE m.group_name = :grp AND m.username = t.username
    )
)
"""

# Every figure but the answer percentiles, at three levels: 0 per alert (keyed by seq), 1 per
# group (by name), 2 in total. Targets are first counted per alert and per set of groups their
# user is in (a few thousand rows: agents share their sets of team and region), so one sort of
# the targets serves both levels where spreading them over each group membership sorted twice as
# many rows; the sets are JSON arrays, so no group name can make two sets read alike. The totals
# add up each alert's counts; the whole's per-alert rows are the alerts' own, so they are not
# counted twice. The row's last column is its key (text at every level, as PostgreSQL wants one
# type to a column), to which _answer_delays' percentiles belong.
_TARGET_FIGURES = (
    _FACTS
    + """,
memberships AS MATERIALIZED (
    SELECT username COLLATE NOCASE AS username, json_group_array(group_name) AS groups
    FROM (
        SELECT username, group_name FROM group_members
        WHERE :grp IS NULL OR group_name = :grp ORDER BY username, group_name
    ) ordered_members
    GROUP BY username
),
by_groups AS MATERIALIZED (
    SELECT
        seq,
        groups,
        COUNT(*) AS targeted,
        COUNT(delivery) AS delivered,
        COUNT(CASE WHEN delivery <= 60 THEN 1 END) AS within_minute,
        COUNT(answer) AS answered,
        COUNT(CASE WHEN action = 0 THEN 1 END) AS acknowledged,
        COUNT(CASE WHEN action = 1 THEN 1 END) AS escalated,
        COUNT(CASE WHEN action = 2 THEN 1 END) AS unable,
        COUNT(clarity) AS surveys,
        SUM(clarity) AS clarity,
        COUNT(templates) AS templated,
        SUM(templates) AS templates,
        MIN(delivery) AS first
    FROM (
        -- A subquery rather than a join: SQLite then looks each username up through an index.
        SELECT f.*, (
            SELECT s.groups FROM memberships s WHERE s.username = f.username COLLATE NOCASE
        ) AS groups
        FROM facts f
    ) grouped_facts
    GROUP BY seq, groups
),
set_groups AS MATERIALIZED (
    SELECT DISTINCT s.groups, m.group_name
    FROM memberships s JOIN group_members m ON m.username = s.username
    WHERE :grp IS NULL OR m.group_name = :grp
),
counted AS MATERIALIZED (
    SELECT
        0 AS level,
        CAST(seq AS TEXT) AS key,
        SUM(targeted) AS targeted,
        SUM(delivered) AS delivered,
        SUM(within_minute) AS within_minute,
        SUM(answered) AS answered,
        SUM(acknowledged) AS acknowledged,
        SUM(escalated) AS escalated,
        SUM(unable) AS unable,
        SUM(surveys) AS surveys,
        SUM(clarity) AS clarity,
        SUM(templated) AS templated,
        SUM(templates) AS templates,
        MIN(first) AS first
    FROM by_groups GROUP BY seq
    UNION ALL
    SELECT
        1,
        g.group_name,
        SUM(b.targeted),
        SUM(b.delivered),
        SUM(b.within_minute),
        SUM(b.answered),
        SUM(b.acknowledged),
        SUM(b.escalated),
        SUM(b.unable),
        SUM(b.surveys),
        SUM(b.clarity),
        SUM(b.templated),
        SUM(b.templates),
        MIN(b.first)
    FROM by_groups b JOIN set_groups g ON g.groups = b.groups
    GROUP BY g.group_name, b.seq
),
per_alert AS (
    SELECT * FROM counted
    UNION ALL
    SELECT 2, '', targeted, delivered, within_minute, answered, acknowledged, escalated, unable,
        surveys, clarity, templated, templates, first
    FROM counted WHERE level = 0
),
totals AS MATERIALIZED (
    SELECT
        level,
        key,
        COUNT(*) AS alerts,
        SUM(targeted) AS targeted,
        SUM(delivered) AS delivered,
        SUM(within_minute) AS within_minute,
        SUM(answered) AS answered,
        SUM(acknowledged) AS acknowledged,
        SUM(escalated) AS escalated,
        SUM(unable) AS unable,
        SUM(surveys) AS surveys,
        -- As AVG: the exact integer sum as a float, over the count (NULL over none).
        SUM(clarity) * 1.0 / SUM(surveys) AS clarity,
        SUM(templates) * 1.0 / SUM(templated) AS templates
    FROM per_alert GROUP BY level, key
),
firsts_ranked AS (
    SELECT level, key, first, ROW_NUMBER() OVER ordered AS rank,
        COUNT(*) OVER (ordered ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS n
    FROM per_alert WHERE first IS NOT NULL
    WINDOW ordered AS (PARTITION BY level, key ORDER BY first)
),
first_median AS (
    SELECT level, key, first FROM firsts_ranked WHERE rank = (n + 1) / 2
)
SELECT
    t.level,
    CAST(CASE t.level WHEN 0 THEN al.id WHEN 1 THEN t.key ELSE '' END AS BLOB),
    t.targeted, t.alerts, t.delivered, t.within_minute, f.first,
    t.answered, t.acknowledged, t.escalated, t.unable, t.surveys, t.clarity, t.templates, t.key
FROM totals t
LEFT JOIN first_median f ON f.level = t.level AND f.key = t.key
LEFT JOIN alerts al ON al.seq = CAST(CASE WHEN t.level = 0 THEN t.key END AS INTEGER)
"""
)

# Every answered target's answer delay (as facts has it), smallest first, for the percentiles:
# SQLite sorts these 100,000 numbers once, where ranking them per alert, per group and in total
# sorted 400,000 rows. Read without facts' receipts and surveys, which they do not need.
_ANSWER_DELAYS = """
WITH
chosen AS MATERIALIZED (
    SELECT seq, id, issued_at FROM alerts
    WHERE drill = :drill AND issued_at >= :since AND issued_at < :until
)
SELECT c.seq, t.username, MAX((t.first_answer >> 2) / 1000.0 - c.issued_at, 0.0) AS answer
FROM chosen c JOIN alert_targets t ON t.alert_id = c.id
WHERE t.first_answer IS NOT NULL AND (:grp IS NULL OR EXISTS (
    SELECT 1 FROM group_members m WHERE m.group_name = :grp AND m.username = t.username
))
ORDER BY answer
"""

# Who is in which group (the one group, when one is asked for), for the answers' group figures.
_MEMBERS = "SELECT username, group_name FROM group_members WHERE :grp IS NULL OR group_name = :grp"

_LEVEL_NAMES = {0: "alert", 1: "group", 2: "total"}

# SQLite's NOCASE folds ASCII letters only; usernames are matched to members the same way here.
_NOCASE = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# The period's alerts (with the group's members among their targets, when a group is asked for),
# their updates and the intervals between them: publish to the first update, then update to
# update.
_ALERTS = """
WITH
chosen AS MATERIALIZED (
    SELECT id, issued_at FROM alerts a
    WHERE drill = :drill AND issued_at >= :since AND issued_at < :until AND (
        :grp IS NULL OR EXISTS (
            SELECT 1 FROM alert_targets t JOIN group_members m ON m.username = t.username
            WHERE t.alert_id = a.id AND m.group_name = :grp
        )
    )
),
gaps AS (
    SELECT ch.alert_id, ch.at - COALESCE(
        LAG(ch.at) OVER (PARTITION BY ch.alert_id ORDER BY ch.number), c.issued_at
    ) AS gap
    FROM chosen c JOIN alert_changes ch ON ch.alert_id = c.id
    WHERE ch.kind = 'update'
),
per_alert AS (
    SELECT alert_id, COUNT(*) AS updates, AVG(gap) AS mean_gap, MAX(gap) AS max_gap
    FROM gaps GROUP BY alert_id
)
SELECT
    CAST(a.id AS BLOB), CAST(a.title AS BLOB), CAST(a.severity AS BLOB), CAST(a.status AS BLOB),
    a.issued_at, a.closed_at, COALESCE(p.updates, 0), p.mean_gap, p.max_gap
FROM chosen c JOIN alerts a ON a.id = c.id LEFT JOIN per_alert p ON p.alert_id = c.id
ORDER BY a.issued_at, a.seq
"""

# Every update interval of the period's alerts at once, for the totals' mean and max.
_INTERVAL_TOTALS = """
WITH
chosen AS MATERIALIZED (
    SELECT id, issued_at FROM alerts a
    WHERE drill = :drill AND issued_at >= :since AND issued_at < :until AND (
        :grp IS NULL OR EXISTS (
            SELECT 1 FROM alert_targets t JOIN group_members m ON m.username = t.username
            WHERE t.alert_id = a.id AND m.group_name = :grp
        )
    )
),
gaps AS (
    SELECT ch.at - COALESCE(
        LAG(ch.at) OVER (PARTITION BY ch.alert_id ORDER BY ch.number), c.issued_at
    ) AS gap
    FROM chosen c JOIN alert_changes ch ON ch.alert_id = c.id
    WHERE ch.kind = 'update'
)
SELECT COUNT(gap), AVG(gap), MAX(gap) FROM gaps
"""

# Each enabled agent's share of the window with at least one live stream: the union of their
# stream_presence intervals (merged where devices or reconnects overlap), clipped to the window,
# then the mean and lowest share per group and over every agent. A stream with no close is live
# to now while its hub saw it lately, else to when it was last seen.
_REACHABILITY = """
WITH
agents AS MATERIALIZED (
    SELECT username FROM users
    WHERE role = 'agent' AND disabled_at IS NULL AND (
        :grp IS NULL OR EXISTS (
            SELECT 1 FROM group_members m
            WHERE m.group_name = :grp AND m.username = users.username
        )
    )
),
spans AS (
    SELECT p.username, MAX(p.opened_at, :start) AS s, MIN(
        COALESCE(
            p.closed_at,
            CASE WHEN p.last_seen_at >= :now - :live THEN :now ELSE p.last_seen_at END
        ),
        :end
    ) AS e
    FROM agents g JOIN stream_presence p ON p.username = g.username
    WHERE p.opened_at < :end
),
ordered AS (
    SELECT username, s, e, MAX(e) OVER (
        PARTITION BY username ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS reach
    FROM spans WHERE e > s
),
islands AS (
    SELECT username, s, e, SUM(CASE WHEN reach IS NULL OR s > reach THEN 1 ELSE 0 END) OVER (
        PARTITION BY username ORDER BY s, e ROWS UNBOUNDED PRECEDING
    ) AS island
    FROM ordered
),
covered AS (
    SELECT username, SUM(length) AS seconds FROM (
        SELECT username, MAX(e) - MIN(s) AS length FROM islands GROUP BY username, island
    ) island_lengths
    GROUP BY username
),
shares AS MATERIALIZED (
    SELECT g.username, COALESCE(c.seconds, 0.0) / (:end - :start) AS share
    FROM agents g LEFT JOIN covered c ON c.username = g.username
)
SELECT 'group', CAST(m.group_name AS BLOB), COUNT(*), AVG(s.share), MIN(s.share)
FROM shares s JOIN group_members m ON m.username = s.username
WHERE :grp IS NULL OR m.group_name = :grp
GROUP BY m.group_name
UNION ALL
SELECT 'total', CAST('' AS BLOB), COUNT(*), AVG(share), MIN(share) FROM shares
"""


@dataclass(frozen=True)
class ReportQuery:
    """What a report covers: alerts issued in [since, until), live or drill, one group or all."""

    since: float
    until: float
    drill: bool
    group: str | None
    now: float


@dataclass(frozen=True)
class TargetFigures:
    """Aggregates over the targets of some alerts (one alert, one group's members, or all)."""

    targeted: int
    alerts: int
    delivered: int
    delivered_within_minute: int
    first_delivery_seconds: float | None
    answered: int
    acknowledged: int
    escalated: int
    unable: int
    answer_median_seconds: float | None
    answer_p90_seconds: float | None
    surveys: int
    clarity_mean: float | None
    templates_mean: float | None


NO_TARGETS = TargetFigures(0, 0, 0, 0, None, 0, 0, 0, 0, None, None, 0, None, None)


@dataclass(frozen=True)
class AlertRow:
    """One alert of the period and its updates: how many, and the intervals between them."""

    alert_id: str
    title: str
    severity: str
    status: str
    issued_at: float
    closed_at: float | None
    updates: int
    update_interval_mean: float | None
    update_interval_max: float | None


@dataclass(frozen=True)
class Reachability:
    """Share of a window agents had a live stream: mean and lowest over `agents` agents."""

    agents: int
    mean_share: float | None
    lowest_share: float | None


NO_AGENTS = Reachability(0, None, None)


@dataclass(frozen=True)
class UpdateIntervals:
    """Every update interval of the period's alerts: how many, mean and longest (seconds)."""

    count: int
    mean: float | None
    longest: float | None


@dataclass(frozen=True)
class ReportRows:
    """Everything a report reads, from one consistent snapshot."""

    alerts: list[AlertRow]
    by_alert: dict[str, TargetFigures]
    by_group: dict[str, TargetFigures]
    total: TargetFigures
    groups: list[str]
    reach_by_group: dict[str, Reachability]
    reach_total: Reachability
    intervals: UpdateIntervals


class ReportStore:
    """Reads the report's figures; writes nothing."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def group_name(self, name: str) -> str | None:
        """A group's stored name, matched in any letter case; None when no group has it."""
        with self._db.read() as conn:
            row = conn.execute("SELECT name FROM groups WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def read(self, query: ReportQuery) -> ReportRows:
        """The figures of one report. Reachability covers [since, min(until, now)]."""
        params: dict[str, Any] = {
            "since": query.since,
            "until": query.until,
            "drill": int(query.drill),
            "grp": query.group,
        }
        with self._db.read() as conn:
            alerts = [_alert_row(row) for row in conn.execute(_ALERTS, params)]
            figures = _target_figures(conn, params)
            interval_row = conn.execute(_INTERVAL_TOTALS, params).fetchone()
            if query.group is None:
                groups = [str(row[0]) for row in conn.execute("SELECT name FROM groups ORDER BY 1")]
            else:
                groups = [query.group]
            reach = _reachability(conn, query)
        return ReportRows(
            alerts=alerts,
            by_alert=figures.get("alert", {}),
            by_group=figures.get("group", {}),
            total=figures.get("total", {}).get("", NO_TARGETS),
            groups=groups,
            reach_by_group={key: value for key, value in reach.items() if key is not None},
            reach_total=reach.get(None, NO_AGENTS),
            intervals=UpdateIntervals(int(interval_row[0]), interval_row[1], interval_row[2]),
        )


def _target_figures(
    conn: Connection, params: dict[str, Any]
) -> dict[str, dict[str, TargetFigures]]:
    delays = _answer_delays(conn, params)
    levels: dict[str, dict[str, TargetFigures]] = {}
    for row in conn.execute(_TARGET_FIGURES, params):
        level = int(row[0])
        median, p90 = _nearest_ranks(delays.get((level, row[14]), []))
        levels.setdefault(_LEVEL_NAMES[level], {})[_decoded(row[1])] = TargetFigures(
            targeted=int(row[2]),
            alerts=int(row[3]),
            delivered=int(row[4]),
            delivered_within_minute=int(row[5]),
            first_delivery_seconds=row[6],
            answered=int(row[7]),
            acknowledged=int(row[8]),
            escalated=int(row[9]),
            unable=int(row[10]),
            answer_median_seconds=median,
            answer_p90_seconds=p90,
            surveys=int(row[11]),
            clarity_mean=row[12],
            templates_mean=row[13],
        )
    return levels


def _answer_delays(
    conn: Connection, params: dict[str, Any]
) -> dict[tuple[int, object], list[float]]:
    # Keyed as _TARGET_FIGURES keys its rows: (0, seq as text), (1, group name), (2, ""). Read in
    # order, so each list is sorted as it is built; each username's group lists are found once.
    group_lists: dict[str, list[float]] = {}
    lists_by_folded: dict[str, list[list[float]]] = {}
    for username, group in conn.execute(_MEMBERS, params):
        lists_by_folded.setdefault(str(username).translate(_NOCASE), []).append(
            group_lists.setdefault(group, [])
        )
    lists_by_username: dict[str, list[list[float]]] = {}
    by_alert: dict[int, list[float]] = {}
    total: list[float] = []
    for seq, username, answer in conn.execute(_ANSWER_DELAYS, params):
        lists = lists_by_username.get(username)
        if lists is None:
            lists = lists_by_folded.get(str(username).translate(_NOCASE), [])
            lists_by_username[username] = lists
        for group_delays in lists:
            group_delays.append(answer)
        alert_delays = by_alert.get(seq)
        if alert_delays is None:
            alert_delays = by_alert[seq] = []
        alert_delays.append(answer)
        total.append(answer)
    delays: dict[tuple[int, object], list[float]] = {(2, ""): total}
    delays.update(((0, str(seq)), values) for seq, values in by_alert.items())
    delays.update(((1, group), values) for group, values in group_lists.items())
    return delays


def _nearest_ranks(ordered: list[float]) -> tuple[float | None, float | None]:
    """The median and 90th percentile of sorted values, nearest-rank: the value at rank
    ceil(p * n) of the n values; None for none."""
    n = len(ordered)
    if n == 0:
        return None, None
    return ordered[(n + 1) // 2 - 1], ordered[(9 * n + 9) // 10 - 1]


def _reachability(conn: Connection, query: ReportQuery) -> dict[str | None, Reachability]:
    end = min(query.until, query.now)
    if not end > query.since:
        # A period wholly in the future has no reachability to measure yet.
        return {}
    params = {
        "start": query.since,
        "end": end,
        "now": query.now,
        "live": LIVE_STREAM_SECONDS,
        "grp": query.group,
    }
    found: dict[str | None, Reachability] = {}
    for row in conn.execute(_REACHABILITY, params):
        key = None if row[0] == "total" else _decoded(row[1])
        found[key] = Reachability(int(row[2]), row[3], row[4]) if row[2] else NO_AGENTS
    return found


def _alert_row(row: Any) -> AlertRow:
    return AlertRow(
        alert_id=_decoded(row[0]),
        title=_decoded(row[1]),
        severity=_decoded(row[2]),
        status=_decoded(row[3]),
        issued_at=float(row[4]),
        closed_at=None if row[5] is None else float(row[5]),
        updates=int(row[6]),
        update_interval_mean=row[7],
        update_interval_max=row[8],
    )


def _decoded(value: object) -> str:
    # Text is read as bytes: one damaged row must not fail the whole report.
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)
