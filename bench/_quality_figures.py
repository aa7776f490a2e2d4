"""The alert-quality figures of one replay: what the engine did, against the ground truth.

:func:`read_run` reads what the engine, the sender and the nurse left in the database;
:func:`figures` compares it with the cohort's truth. Everything after the read is pure.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from alerts.protocol import Protocol

WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class FindingRow:
    patient_id: int
    episode_id: int | None
    protocol: str
    rule: str
    routing: str
    opened_at: datetime
    resolved_at: datetime | None

    @property
    def clinical(self) -> bool:
        """A finding about the patient's state; a not-measuring task is about their devices."""
        return self.routing != "centre_task"

    def open_at(self, t: datetime) -> bool:
        return self.opened_at <= t and (self.resolved_at is None or self.resolved_at > t)


@dataclass(frozen=True, slots=True)
class EpisodeRow:
    id: int
    patient_id: int
    opened_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    episodes: list[EpisodeRow]
    findings: list[FindingRow]
    gp_sms: dict[int, list[str]]  # per episode: the stages of its SMS to the GP not cancelled
    worsened: Counter[int]  # per episode: how many times its severity rose
    centre_sms: Counter[int]  # per episode: SMS rows to the duty phone not cancelled


@dataclass(frozen=True, slots=True)
class Truth:
    """One patient as the bench knows them."""

    patient_id: int
    code: str
    protocol: str
    scenario: str
    deteriorating: bool
    enrolled_at: datetime
    onset_at: datetime | None
    significant_at: datetime | None


@dataclass(slots=True)
class Figures:
    deteriorations: int = 0
    detected: int = 0
    missed: list[str] = field(default_factory=list)  # codes of patients never detected
    not_significant: int = 0  # deteriorating, yet not significant within the run
    delays: dict[str, list[float]] = field(default_factory=dict)  # minutes, per protocol
    stable_weeks: float = 0.0
    false_episodes: int = 0
    false_patients: int = 0
    false_rules: Counter[str] = field(default_factory=Counter)  # protocol/rule of their findings
    # Episodes of stable patients whose true vitals did meet their protocol's criterion.
    justified_episodes: int = 0
    justified_patients: int = 0
    stable_tasks: int = 0
    task_rules: Counter[str] = field(default_factory=Counter)
    clinical_episodes: int = 0
    gp_sms: int = 0
    gp_sms_max: int = 0
    gp_sms_max_steady: int = 0  # among episodes whose severity never rose
    over_gp_limit: list[str] = field(default_factory=list)  # the episodes past the limit
    centre_sms: int = 0
    centre_sms_max: int = 0
    patient_weeks: float = 0.0
    queue_rows: int = 0
    most_open: int = 0

    @property
    def median_delay(self) -> float | None:
        every = [d for delays in self.delays.values() for d in delays]
        return statistics.median(every) if every else None

    @property
    def false_per_week(self) -> float:
        return self.false_episodes / self.stable_weeks if self.stable_weeks else 0.0

    @property
    def tasks_per_week(self) -> float:
        return self.stable_tasks / self.stable_weeks if self.stable_weeks else 0.0

    @property
    def gp_sms_mean(self) -> float:
        return self.gp_sms / self.clinical_episodes if self.clinical_episodes else 0.0

    @property
    def rows_per_week(self) -> float:
        return self.queue_rows / self.patient_weeks if self.patient_weeks else 0.0


def read_run(conn: psycopg.Connection) -> RunRecord:
    episodes = [
        EpisodeRow(*row)
        for row in conn.execute(
            "SELECT id, patient_id, opened_at, resolved_at FROM episodes ORDER BY id"
        )
    ]
    findings = [
        FindingRow(*row)
        for row in conn.execute(
            "SELECT patient_id, episode_id, protocol, rule, routing, opened_at, resolved_at "
            "FROM alerts ORDER BY id"
        )
    ]
    gp_sms: dict[int, list[str]] = {}
    centre_sms: Counter[int] = Counter()
    for episode_id, kind, stage in conn.execute(
        "SELECT episode_id, recipient_kind, stage FROM notifications "
        "WHERE status <> 'cancelled' AND episode_id IS NOT NULL ORDER BY id"
    ):
        if kind == "gp":
            gp_sms.setdefault(episode_id, []).append(stage)
        else:
            centre_sms[episode_id] += 1
    worsened = Counter(
        {
            episode_id: count
            for episode_id, count in conn.execute(
                "SELECT episode_id, count(*) FROM episode_events WHERE kind = 'worsened' "
                "GROUP BY episode_id"
            )
        }
    )
    return RunRecord(episodes, findings, gp_sms, worsened, centre_sms)


def with_clinical_findings(record: RunRecord) -> set[int]:
    """The patients who had a clinical finding."""
    return {f.patient_id for f in record.findings if f.clinical}


def detection(findings: Sequence[FindingRow], onset: datetime) -> datetime | None:
    """The first time from the onset on that the patient had a clinical finding open."""
    times = [
        max(f.opened_at, onset)
        for f in findings
        if f.clinical and (f.opened_at >= onset or f.open_at(onset))
    ]
    return min(times, default=None)


def most_open_at_once(episodes: Sequence[EpisodeRow]) -> int:
    """The most episodes one patient had open at the same time."""
    by_patient: dict[int, list[EpisodeRow]] = {}
    for episode in episodes:
        by_patient.setdefault(episode.patient_id, []).append(episode)
    return max(
        (
            sum(
                1
                for other in own
                if other.opened_at <= episode.opened_at
                and (other.resolved_at is None or other.resolved_at > episode.opened_at)
            )
            for own in by_patient.values()
            for episode in own
        ),
        default=0,
    )


def figures(
    record: RunRecord,
    truths: Sequence[Truth],
    end: datetime,
    *,
    gp_limit: int = 2,
    justified: Mapping[int, datetime] | None = None,
) -> Figures:
    """``justified``: when the true vitals of stable patients met their protocol's criterion
    anyway; their clinical episodes from then on are not false."""
    justified = justified or {}
    out = Figures()
    by_patient: dict[int, list[FindingRow]] = {}
    for finding in record.findings:
        by_patient.setdefault(finding.patient_id, []).append(finding)
    clinical_episodes = {f.episode_id for f in record.findings if f.clinical and f.episode_id}
    for truth in truths:
        weeks = max(end - truth.enrolled_at, timedelta(0)) / WEEK
        out.patient_weeks += weeks
        own = by_patient.get(truth.patient_id, [])
        if not truth.deteriorating:
            out.stable_weeks += weeks
            # An episode's time is that of its first clinical finding.
            first: dict[int | None, FindingRow] = {}
            for f in own:
                if f.clinical and (
                    f.episode_id not in first or f.opened_at < first[f.episode_id].opened_at
                ):
                    first[f.episode_id] = f
            met = justified.get(truth.patient_id)
            right = {e for e, f in first.items() if met is not None and f.opened_at >= met}
            out.justified_episodes += len(right)
            out.justified_patients += bool(right)
            false = set(first) - right
            out.false_episodes += len(false)
            out.false_patients += bool(false)
            out.false_rules.update(
                f"{f.protocol}/{f.rule}" for f in own if f.clinical and f.episode_id in false
            )
            out.stable_tasks += sum(1 for f in own if not f.clinical)
            out.task_rules.update(f"{f.protocol}/{f.rule}" for f in own if not f.clinical)
            continue
        if truth.significant_at is None or truth.onset_at is None:
            out.not_significant += 1
            continue
        out.deteriorations += 1
        found = detection(own, truth.onset_at)
        if found is None:
            out.missed.append(truth.code)
            continue
        out.detected += 1
        delay = max(found - truth.significant_at, timedelta(0)) / timedelta(minutes=1)
        out.delays.setdefault(truth.protocol, []).append(delay)
    out.clinical_episodes = len(clinical_episodes)
    counts = {e: len(record.gp_sms.get(e, ())) for e in clinical_episodes}
    out.gp_sms = sum(counts.values())
    out.gp_sms_max = max(counts.values(), default=0)
    out.gp_sms_max_steady = max((n for e, n in counts.items() if not record.worsened[e]), default=0)
    out.centre_sms = sum(record.centre_sms.values())
    out.centre_sms_max = max(record.centre_sms.values(), default=0)
    codes = {t.patient_id: t.code for t in truths}
    patient_of = {e.id: e.patient_id for e in record.episodes}
    for e, n in sorted(counts.items(), key=lambda item: -item[1]):
        if n > gp_limit:
            rules = sorted({f"{f.protocol}/{f.rule}" for f in record.findings if f.episode_id == e})
            out.over_gp_limit.append(
                f"episode {e} of {codes.get(patient_of[e])}: {n} SMS "
                f"({', '.join(record.gp_sms[e])}), severity rose {record.worsened[e]}x, "
                f"findings {', '.join(rules)}"
            )
    out.queue_rows = len(record.episodes)
    out.most_open = most_open_at_once(record.episodes)
    return out


def measurement_interval(protocol: Protocol) -> timedelta | None:
    """How often the protocol asks for a reading: ``expected_every`` of its missing-data rule."""
    for rule in protocol.rules:
        if rule.kind == "missing_data" and rule.expected_every:
            return timedelta(seconds=rule.expected_every)
    return None


def delay_targets(protocols: Mapping[str, Protocol]) -> dict[str, timedelta | None]:
    return {key: measurement_interval(protocol) for key, protocol in protocols.items()}
