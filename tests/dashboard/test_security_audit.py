"""Audit completeness, route by route as enumerated from the app.

Every state-changing route, exercised successfully, leaves an audit row naming its actor, action,
target, time and address; every read of patient data does too (a GP's clinical reads, a nurse's
worklists). A route with no recipe or classification here fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from tests.dashboard.conftest import World, _password_hash, open_red_finding
from tests.dashboard.support import PASSWORD, login
from tests.dashboard.test_security_routes import Endpoint, endpoints

ADDRESS = "198.51.100.23"
USERS = {
    "gp": "dr.rossi",
    "nurse": "nurse.greco",
    "admin": "admin",
    "privacy": "privacy.officer",
}
NOT_AUDITED_WRITES = {
    ("POST", "/sms/status"): "Twilio's delivery report: no staff actor; the notification row "
    "records it (status, provider id, timestamps)",
    ("POST", "/sms/inbound"): "a patient's SMS: recorded in inbound_sms; an opt-out or opt-in it "
    "makes is audited with the patient as actor (tests/dashboard/test_patient_sms.py)",
}


@dataclass(frozen=True)
class Target:
    action: str
    object_type: str
    object_id: int
    patient_id: int | None = None


@dataclass
class Ctx:
    app: object
    world: World
    db: psycopg.Connection
    clients: dict[str, TestClient]
    tokens: dict[str, str]

    def call(self, role: str, method: str, url: str, **kwargs):
        headers = {"x-csrf-token": self.tokens[role]}
        return self.clients[role].request(method, url, headers=headers, **kwargs)

    def fresh_episode(self) -> tuple[int, int]:
        """A new open episode of the own patient, with its one finding."""
        return open_red_finding(self.db, self.world.patients["own"])

    def new_client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False, client=(ADDRESS, 40001))

    def id_of(self, table: str, column: str, value: str) -> int:
        return self.db.execute(f"SELECT id FROM {table} WHERE {column} = %s", (value,)).fetchone()[
            0
        ]


Done = list[tuple[str, object, Target]]  # (role, response, expected audit row)


def _episode_actions(ctx: Ctx, e: Endpoint) -> Done:
    """Every episode action route (HTML form or JSON), each action on a fresh open episode."""
    done = []
    actions = e.path_params().get("action") or (e.path.rsplit("/", 1)[-1],)
    for action in actions:
        episode, _ = ctx.fresh_episode()
        url = e.path.format(episode_id=episode, action=action)
        if e.path.startswith("/api/"):
            response = ctx.call("nurse", e.method, url, json=e.json_body() or {})
        else:
            response = ctx.call("nurse", e.method, url, data={"outcome": "reached", "note": "a"})
        target = Target(f"episode.{action}", "episode", episode, ctx.world.patients["own"])
        done.append(("nurse", response, target))
    return done


def _finding_resolve(ctx: Ctx, e: Endpoint) -> Done:
    """Resolving one finding (HTML form or JSON) of a fresh episode."""
    _, finding = ctx.fresh_episode()
    url = e.path.format(alert_id=finding)
    if e.path.startswith("/api/"):
        response = ctx.call("nurse", e.method, url, json={"note": "a"})
    else:
        response = ctx.call("nurse", e.method, url, data={"note": "a"})
    target = Target("finding.resolve", "alert", finding, ctx.world.patients["own"])
    return [("nurse", response, target)]


def _login(ctx: Ctx, e: Endpoint) -> Done:
    client = ctx.new_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    response = client.post(
        "/login", data={"username": "dr.rossi", "password": PASSWORD, "csrf_token": token}
    )
    return [("gp", response, Target("login", "staff", ctx.world.staff["gp"]))]


def _logout(ctx: Ctx, e: Endpoint) -> Done:
    client = ctx.new_client()
    csrf = login(client, "dr.rossi")
    response = client.post("/logout", headers={"x-csrf-token": csrf})
    return [("gp", response, Target("logout", "staff", ctx.world.staff["gp"]))]


def _password(ctx: Ctx, e: Endpoint) -> Done:
    """The GP changes their own password, which ends every other session of the account: the
    shared password is restored and the GP's client signed in again for the other recipes."""
    client = ctx.new_client()
    csrf = login(client, "dr.rossi")
    new = "another-long-password"
    response = client.post(
        "/password",
        data={
            "csrf_token": csrf,
            "current_password": PASSWORD,
            "new_password": new,
            "new_password_again": new,
        },
    )
    ctx.db.execute(
        "UPDATE staff SET password_hash = %s WHERE username = 'dr.rossi'", (_password_hash(),)
    )
    ctx.tokens["gp"] = login(ctx.clients["gp"], "dr.rossi")
    return [("gp", response, Target("password.change", "staff", ctx.world.staff["gp"]))]


def _settings(role: str, method: str, **kwargs) -> Callable[[Ctx, Endpoint], Done]:
    def run(ctx: Ctx, e: Endpoint) -> Done:
        response = ctx.call(role, method, e.path, **kwargs)
        return [(role, response, Target("settings.update", "staff", ctx.world.staff[role]))]

    return run


def _staff_create(ctx: Ctx, e: Endpoint) -> Done:
    username = f"nurse.{e.method.lower()}{len(e.path)}"
    new = {"username": username, "display_name": "N", "role": "nurse", "password": "long-pass-1"}
    if e.path.startswith("/api/"):
        response = ctx.call("admin", "POST", e.path, json=new)
    else:
        response = ctx.call("admin", "POST", e.path, data=new)
    return [
        (
            "admin",
            response,
            Target("staff.create", "staff", ctx.id_of("staff", "username", username)),
        )
    ]


def _staff_update(ctx: Ctx, e: Endpoint) -> Done:
    staff = ctx.world.staff["nurse_b"]
    url = e.path.format(staff_id=staff)
    if e.path.startswith("/api/"):
        response = ctx.call("admin", e.method, url, json={"role": "nurse"})
    else:
        response = ctx.call("admin", e.method, url, data={"role": "nurse"})
    return [("admin", response, Target("staff.update", "staff", staff))]


def _enrol(ctx: Ctx, e: Endpoint) -> Done:
    code = "P-API" if e.path.startswith("/api/") else "P-FORM"
    new = {
        "code": code,
        "given_name": "Gianna",
        "family_name": "Moretti",
        "gp_id": ctx.world.staff["gp"],
        "protocol": "covid19_home_oximetry",
    }
    if e.path.startswith("/api/"):
        response = ctx.call("admin", "POST", e.path, json=new)
    else:
        form = {k: str(v) for k, v in new.items()} | {"consent_date": date.today().isoformat()}
        response = ctx.call("admin", "POST", e.path, data=form)
    patient = ctx.id_of("patients", "code", code)
    return [("admin", response, Target("patient.enrol", "patient", patient, patient))]


def _new_patient(ctx: Ctx, code: str) -> int:
    """A patient of the admin recipes' own, so a discharge leaves the world's as it is."""
    return ctx.db.execute(
        "INSERT INTO patients (code, given_name, family_name, gp_id) "
        "VALUES (%s, 'Gianna', 'Moretti', %s) RETURNING id",
        (code, ctx.world.staff["gp"]),
    ).fetchone()[0]


def _enrolment_edit(ctx: Ctx, e: Endpoint) -> Done:
    patient = _new_patient(ctx, "P-EDIT")
    form = {
        "given_name": "Gianna",
        "family_name": "Moretti",
        "gp_id": str(ctx.world.staff["gp"]),
        "protocol": "copd",
        "consent_date": date.today().isoformat(),
        "change_reason": "consent recorded",
    }
    response = ctx.call("admin", "POST", e.path.format(patient_id=patient), data=form)
    return [("admin", response, Target("patient.update", "patient", patient, patient))]


def _discharge(ctx: Ctx, e: Endpoint) -> Done:
    patient = _new_patient(ctx, "P-DISCHARGE")
    form = {"discharge_date": date.today().isoformat(), "discharge_reason": "recovered"}
    response = ctx.call("admin", "POST", e.path.format(patient_id=patient), data=form)
    return [("admin", response, Target("patient.discharge", "patient", patient, patient))]


def _kit(ctx: Ctx, e: Endpoint) -> Done:
    patient = _new_patient(ctx, "P-KIT")
    url = e.path.format(patient_id=patient)
    response = ctx.call("admin", "POST", url, data={"action": "gateway", "code": "GW-KIT"})
    gateway = ctx.id_of("gateways", "code", "GW-KIT")
    return [("admin", response, Target("kit.assign", "gateway", gateway, patient))]


def _gateway(ctx: Ctx, e: Endpoint) -> Done:
    code = "GW-API" if e.path.startswith("/api/") else "GW-FORM"
    own = ctx.world.patients["own"]
    if e.path.startswith("/api/"):
        response = ctx.call("admin", "POST", e.path, json={"code": code, "patient_id": own})
    else:
        response = ctx.call("admin", "POST", e.path, data={"code": code, "patient_id": str(own)})
    gateway = ctx.id_of("gateways", "code", code)
    return [("admin", response, Target("gateway.register", "gateway", gateway, own))]


def _reminders(ctx: Ctx, e: Endpoint) -> Done:
    own = ctx.world.patients["own"]
    url = e.path.format(patient_id=own)
    if e.path == "/api/admin/reminders":
        response = ctx.call("admin", "PUT", url, json={"patient_id": own, "opted_out": True})
        return [("admin", response, Target("patient.reminders.opt_out", "patient", own, own))]
    if e.path.startswith("/api/"):
        response = ctx.call("nurse", "PUT", url, json={"opted_out": True})
    else:
        response = ctx.call("nurse", "POST", url, data={"opted_out": "yes"})
    return [("nurse", response, Target("patient.reminders.opt_out", "patient", own, own))]


def _validate_report(ctx: Ctx, e: Endpoint) -> Done:
    own = ctx.world.patients["own"]
    today = datetime.now(UTC).date()
    period = {"from": (today - timedelta(days=13)).isoformat(), "to": today.isoformat()}
    response = ctx.call("gp", "POST", e.path.format(patient_id=own), data=period)
    return [("gp", response, Target("patient.report.validate", "patient", own, own))]


def _patient_tag(ctx: Ctx, e: Endpoint) -> Done:
    """A GP tags their own patient, then removes the tag."""
    own = ctx.world.patients["own"]
    done = []
    for action in ("add", "remove"):
        data = {"tag": "home visit", "action": action}
        response = ctx.call("gp", e.method, e.path.format(patient_id=own), data=data)
        done.append(("gp", response, Target(f"patient.tag.{action}", "patient", own, own)))
    return done


def _restriction(ctx: Ctx, e: Endpoint) -> Done:
    """The GP records the patient's request to hide their pulse readings, then its withdrawal."""
    own = ctx.world.patients["own"]
    url = e.path.format(patient_id=own)
    new = {"kind": "metric_category", "category": "pulse_rate"}
    new["requested_on"] = date.today().isoformat()
    if e.path.endswith("/revoke"):
        ctx.call("gp", "POST", f"/api/patients/{own}/restrictions", json=new)
        restriction = ctx.db.execute("SELECT max(id) FROM patient_restrictions").fetchone()[0]
        response = ctx.call("gp", "POST", url, json={"restriction": restriction})
        action = "patient.restriction.revoke"
    elif e.path.startswith("/api/"):
        response = ctx.call("gp", "POST", url, json=new)
        action = "patient.restriction.record"
    else:
        response = ctx.call("gp", "POST", url, data=new)
        action = "patient.restriction.record"
    restriction = ctx.db.execute("SELECT max(id) FROM patient_restrictions").fetchone()[0]
    return [("gp", response, Target(action, "restriction", restriction, own))]


RECIPES: dict[tuple[str, str], Callable[[Ctx, Endpoint], Done]] = {
    ("POST", "/login"): _login,
    ("POST", "/logout"): _logout,
    ("POST", "/password"): _password,
    ("POST", "/language"): _settings("nurse", "POST", data={"language": "it", "next": "/"}),
    ("POST", "/settings"): _settings("nurse", "POST", data={"language": "en"}),
    ("PUT", "/api/me/settings"): _settings("gp", "PUT", json={"language": "en"}),
    ("POST", "/admin/staff"): _staff_create,
    ("POST", "/api/admin/staff"): _staff_create,
    ("POST", "/admin/staff/{staff_id}"): _staff_update,
    ("PATCH", "/api/admin/staff/{staff_id}"): _staff_update,
    ("POST", "/admin/patients"): _enrol,
    ("POST", "/api/admin/patients"): _enrol,
    ("POST", "/admin/gateways"): _gateway,
    ("POST", "/admin/patients/{patient_id}"): _enrolment_edit,
    ("POST", "/admin/patients/{patient_id}/discharge"): _discharge,
    ("POST", "/admin/patients/{patient_id}/kit"): _kit,
    ("POST", "/patients/{patient_id}/tags"): _patient_tag,
    ("POST", "/api/admin/gateways"): _gateway,
    ("POST", "/patients/{patient_id}/reminders"): _reminders,
    ("PUT", "/api/patients/{patient_id}/reminders"): _reminders,
    ("PUT", "/api/admin/reminders"): _reminders,
    ("POST", "/patients/{patient_id}/report/validate"): _validate_report,
    ("POST", "/patients/{patient_id}/restrictions"): _restriction,
    ("POST", "/api/patients/{patient_id}/restrictions"): _restriction,
    ("POST", "/api/patients/{patient_id}/restrictions/revoke"): _restriction,
}


def _recipe(e: Endpoint) -> Callable[[Ctx, Endpoint], Done] | None:
    if "episode_id" in e.path_params():
        return _episode_actions
    if "alert_id" in e.path_params():
        return _finding_resolve
    return RECIPES.get(e.key)


def _signed_in(app, world: World, db: psycopg.Connection) -> Ctx:
    clients = {r: TestClient(app, follow_redirects=False, client=(ADDRESS, 40000)) for r in USERS}
    tokens = {role: login(clients[role], user) for role, user in USERS.items()}
    return Ctx(app, world, db, clients, tokens)


def _rows_since(db: psycopg.Connection, last_id: int) -> list[dict]:
    cur = db.execute(
        "SELECT id, at, actor_id, actor_username, actor_role, action, patient_id, object_type, "
        "object_id, details, host(client_address) AS address FROM audit_log WHERE id > %s "
        "ORDER BY id",
        (last_id,),
    )
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


def _last_id(db: psycopg.Connection) -> int:
    return db.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]


def _well_formed(row: dict, world: World, role: str, started: datetime) -> bool:
    """Actor (id, name, role), time and address are all there."""
    return (
        row["actor_id"] == world.staff[role]
        and row["actor_username"] == USERS[role]
        and row["actor_role"] == role
        and started - timedelta(seconds=5) <= row["at"] <= datetime.now(UTC)
        and row["address"] == ADDRESS
    )


def test_every_state_changing_route_is_audited(app, world: World, db: psycopg.Connection) -> None:
    changing = [e for e in endpoints(app) if e.state_changing and e.key not in NOT_AUDITED_WRITES]
    missing = [e.key for e in changing if _recipe(e) is None]
    assert missing == [], "give these routes a recipe (or a reason in NOT_AUDITED_WRITES)"
    with TestClient(app):  # the app's lifespan: its pool, for the clients below
        ctx = _signed_in(app, world, db)
        started = datetime.now(UTC)
        failures, requests = [], 0
        for e in changing:
            # Rows since this route's own requests only: the HTML and JSON twins of a route
            # share targets, and one must not pass on the other's row.
            mark = _last_id(db)
            done = _recipe(e)(ctx, e)
            written = _rows_since(db, mark)
            for role, response, target in done:
                requests += 1
                rows = [
                    r
                    for r in written
                    if (r["action"], r["object_type"], r["object_id"])
                    == (target.action, target.object_type, str(target.object_id))
                ]
                ok = response.status_code in (200, 201, 303) and any(
                    _well_formed(r, world, role, started) and r["patient_id"] == target.patient_id
                    for r in rows
                )
                if not ok:
                    failures.append((e.key, target, response.status_code, rows))
    print(
        f"audit: {len(changing)} state-changing routes, {requests} successful requests, "
        f"{requests - len(failures)} with an audit row (actor, role, action, target, time, "
        f"address); not audited by design: {list(NOT_AUDITED_WRITES)}"
    )
    assert failures == []
    assert len(changing) >= 19 and requests >= 23


# Reads holding patient data: who reads, the audit action, and how the row names the patient
# ("patient": patient_id is the caller's own patient; "list": details.patients lists it).
AUDITED_READS = {
    "/admin/patients": ("admin", r"enrolments\.read", "list"),
    "/admin/patients/{patient_id}": ("admin", r"enrolment\.read", "patient"),
    "/admin/patients/{patient_id}/card": ("admin", r"device_card\.read", "patient"),
    # What a patient asked to hide is itself information about them.
    "/admin/patients/{patient_id}/restrictions": (
        "admin",
        r"patient\.restrictions\.read",
        "patient",
    ),
    # Who accessed a patient's data is the patient's data too: the next report names it.
    "/admin/patients/{patient_id}/access-report.csv": (
        "privacy",
        r"patient\.access_report\.csv",
        "patient",
    ),
    "/admin/patients/{patient_id}/access-report.pdf": (
        "privacy",
        r"patient\.access_report\.pdf",
        "patient",
    ),
    "/patients": ("gp", r"patient\.list", "list"),
    "/patients/fragment": ("gp", r"patient\.list", "list"),
    "/api/patients": ("gp", r"patient\.list", "list"),
    "/patients/{patient_id}": ("gp", r"patient\.read", "patient"),
    "/api/patients/{patient_id}": ("gp", r"patient\.read", "patient"),
    "/api/patients/{patient_id}/episodes": ("gp", r"patient\.episodes\.read", "patient"),
    "/api/patients/{patient_id}/series/{metric}": ("gp", r"patient\.vitals\.read", "patient"),
    "/episodes/{episode_id}": ("gp", r"episode\.read", "patient"),
    "/api/episodes/{episode_id}": ("gp", r"episode\.read", "patient"),
    "/api/episodes/{episode_id}/events": ("gp", r"episode\.events\.read", "patient"),
    "/alerts/{alert_id}": ("gp", r"alert\.read", "patient"),
    "/api/alerts/{alert_id}": ("gp", r"alert\.read", "patient"),
    "/fhir/Patient/{patient_id}": ("gp", r"fhir\.patient\.read", "patient"),
    "/fhir/Observation": ("gp", r"fhir\.observation\.search", "patient"),
    "/fhir/Observation/{observation_id}": ("gp", r"fhir\.observation\.read", "patient"),
    "/fhir/Patient/{patient_id}/$everything": ("gp", r"fhir\.patient\.everything", "patient"),
    "/patients/{patient_id}/report": ("gp", r"patient\.report\.read", "patient"),
    "/patients/{patient_id}/report.pdf": ("gp", r"patient\.report\.pdf", "patient"),
    "/patients/{patient_id}/report.fhir": ("gp", r"patient\.report\.fhir", "patient"),
    "/patients/{patient_id}/readings.csv": ("gp", r"patient\.readings\.csv", "patient"),
    "/patients/{patient_id}/closing-report": ("gp", r"patient\.closing_report\.read", "patient"),
    "/patients/{patient_id}/closing-report.pdf": ("gp", r"patient\.closing_report\.pdf", "patient"),
    "/patients/{patient_id}/closing-report.fhir": (
        "gp",
        r"patient\.closing_report\.fhir",
        "patient",
    ),
    "/triage": ("nurse", r"triage\.read", "list"),
    "/triage/fragment": ("nurse", r"triage\.read", "list"),
    "/api/triage": ("nurse", r"triage\.read", "list"),
    "/equipment": ("nurse", r"gateways\.offline\.read", "list"),
    "/api/gateways/offline": ("nurse", r"gateways\.offline\.read", "list"),
    "/api/devices/low-battery": ("nurse", r"devices\.low_battery\.read", "list"),
    # SMS bodies carry vital values; the outbox holds none of centre A's patients here.
    "/sms": ("nurse", r"notifications\.failed\.read", "list"),
    "/api/notifications/{status}": (
        "nurse",
        r"notifications\.(failed|outboxed|cancelled)\.read",
        None,
    ),
}
# A finding's page is its episode's: reading the finding, it redirects there.
# Never validated / never discharged: a 404 that is still an audited read.
READ_STATUS = {
    "/alerts/{alert_id}": 303,
    "/patients/{patient_id}/report.fhir": 404,
    **dict.fromkeys(
        [f"/patients/{{patient_id}}/closing-report{leaf}" for leaf in ("", ".pdf", ".fhir")], 404
    ),
}
NO_PATIENT_DATA = {
    "/login": "the sign-in form",
    "/lang/{language}": "the sign-in form's language",
    "/": "a redirect to the role's home page",
    "/settings": "the caller's own settings",
    "/password": "the caller's own password form",
    "/api/me": "the caller's own account",
    "/api/me/settings": "the caller's own settings",
    "/admin": "staff accounts, care teams, GPs and protocol names",
    "/admin/patients/new": "the empty enrolment form: GPs, care teams and protocols",
    "/admin/access-report": "the privacy officer's form; a code found redirects to the audited "
    "report (no patient data on the page)",
    "/admin/restrictions": "the admin's oscuramento finder; a code found redirects to the "
    "audited page of the patient's requests (no patient data on the page)",
    "/api/admin/staff": "staff accounts",
    "/api/admin/protocols": "protocol names",
    "/events": "counts of open episodes, no patient named",
    "/status": "service status",
    "/healthz": "service status",
    "/fhir/metadata": "the FHIR CapabilityStatement: what the server answers",
}


def test_every_read_of_patient_data_is_audited(app, world: World, db: psycopg.Connection) -> None:
    reads = [e for e in endpoints(app) if e.method == "GET"]
    unclassified = [e.path for e in reads if e.path not in AUDITED_READS | NO_PATIENT_DATA]
    assert unclassified == [], "classify these reads in AUDITED_READS or NO_PATIENT_DATA"
    own = world.patients["own"]
    ids = {
        "patient_id": own,
        "episode_id": world.episodes["own"],
        "alert_id": world.alerts["own"],
        "patient": own,
        "observation_id": world.observations["own"],
    }
    with TestClient(app):
        ctx = _signed_in(app, world, db)
        started = datetime.now(UTC)
        failures, urls = [], 0
        for e in reads:
            if e.path not in AUDITED_READS:
                continue
            role, action, scope = AUDITED_READS[e.path]
            for url in e.urls(ids):
                urls += 1
                mark = _last_id(db)
                response = ctx.call(role, "GET", url)
                rows = [
                    r
                    for r in _rows_since(db, mark)
                    if re.fullmatch(action, r["action"]) and _well_formed(r, world, role, started)
                ]
                if scope == "patient":
                    rows = [r for r in rows if r["patient_id"] == own]
                elif scope == "list":
                    rows = [r for r in rows if own in r["details"].get("patients", [])]
                if response.status_code != READ_STATUS.get(e.path, 200) or not rows:
                    failures.append((url, role, response.status_code))
    gp_reads = sum(1 for role, _, _ in AUDITED_READS.values() if role == "gp")
    print(
        f"audit: {len(AUDITED_READS)} patient-data reads ({gp_reads} of them a GP's), {urls} "
        f"URLs, {urls - len(failures)} audited with actor, time and patient; "
        f"{len(NO_PATIENT_DATA)} reads hold no patient data"
    )
    assert failures == []
