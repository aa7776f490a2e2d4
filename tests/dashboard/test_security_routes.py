"""The route inventory the security tests share: enumerated from ``app.routes``, never hand-listed.

A new route is probed by the IDOR, CSRF and audit tests as soon as it exists; a route whose
parameters or role in those tests are not classified here (or in the test that needs it) fails.
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from fastapi.routing import APIRoute

from dashboard.authz import PERMISSIONS, signed_in

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Path parameters naming a record, and the kind of record.
ID_PARAMS = {
    "patient_id": "patient",
    "episode_id": "episode",
    "alert_id": "alert",
    "staff_id": "staff",
    "observation_id": "observation",  # a patient's reading: "{patient}-{metric}-{ms}"
}
# Path parameters naming no record: every enumerated value is probed; free ones get a sample.
VALUE_PARAMS = {
    "metric": "a vital sign (enumerated)",
    "action": "an episode action (enumerated)",
    "status": "an SMS status (enumerated)",
    "language": "a language code; unknown ones are ignored",
}
FREE_SAMPLES = {"language": "en"}
# Query parameters naming a record.
ID_QUERY = {("GET", "/fhir/Observation"): {"patient": "patient"}}
# Names that would be a record reference if a query parameter had them.
ID_LIKE = (
    "_id",
    "patient",
    "subject",
    "episode",
    "alert",
    "staff",
    "gateway",
    "notification",
    "device",
)
# Admins manage every account, patient and gateway: bodies naming records are theirs alone.
ADMIN_PERMISSIONS = frozenset({"staff.manage", "patient.enrol"})


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    route: APIRoute

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def state_changing(self) -> bool:
        return self.method in STATE_CHANGING

    @property
    def needs_session(self) -> bool:
        return _depends_on(self.route.dependant, signed_in)

    @property
    def permission(self) -> str | None:
        """The permission a ``require(...)`` dependency checks, if any."""
        return _permission(self.route.dependant)

    def path_params(self) -> dict[str, tuple[Any, ...]]:
        """Each path parameter with its enumerated values (empty when not a Literal)."""
        return {
            p.name: typing.get_args(p.field_info.annotation)
            if typing.get_origin(p.field_info.annotation) is Literal
            else ()
            for p in self.route.dependant.path_params
        }

    def query_params(self) -> list[str]:
        return [q.alias for q in _walk(self.route.dependant, "query_params")]

    def body_params(self) -> list[Any]:
        return list(_walk(self.route.dependant, "body_params"))

    def id_params(self) -> dict[str, str]:
        """Every parameter naming a record (path or query) and its kind."""
        found = {n: ID_PARAMS[n] for n in self.path_params() if n in ID_PARAMS}
        return found | ID_QUERY.get(self.key, {})

    def urls(self, ids: dict[str, int]) -> list[str]:
        """Concrete URLs: id parameters from ``ids``, enumerated ones over all their values."""
        params = self.path_params()
        choices = []
        for name, values in params.items():
            if name in ID_PARAMS:
                choices.append([(name, ids[name])])
            elif values:
                choices.append([(name, v) for v in values])
            else:
                choices.append([(name, FREE_SAMPLES[name])])
        urls = []
        for combination in itertools.product(*choices):
            url = self.path.format(**dict(combination))
            query = [f"{q}={ids[q]}" for q in ID_QUERY.get(self.key, {})]
            urls.append(url + ("?" + "&".join(query) if query else ""))
        return urls

    def json_body(self) -> dict[str, Any] | None:
        """A minimal valid JSON body (required Literal fields get their first value)."""
        for param in self.body_params():
            if type(param.field_info).__name__ != "Body":
                continue
            annotation = param.field_info.annotation
            if type(None) in typing.get_args(annotation):
                return None  # the body is optional
            body = {}
            for name, field in annotation.model_fields.items():
                if not field.is_required():
                    continue
                if field.annotation is bool:
                    body[name] = True
                    continue
                if field.annotation is date:
                    body[name] = "2024-01-01"
                    continue
                if field.annotation is int:  # a row id under a patient in the path
                    body[name] = 1
                    continue
                values = typing.get_args(field.annotation)
                assert typing.get_origin(field.annotation) is Literal, (
                    f"{self.key}: give {annotation.__name__}.{name} an example in json_body()"
                )
                body[name] = values[0]
            return body
        return None

    def role(self) -> str:
        """A role that may call this route: the CSRF check, not a 403 for the role, is tested."""
        wanted = self.permission
        return next(
            r for r in ("nurse", "admin", "gp") if wanted is None or wanted in PERMISSIONS[r]
        )


def _walk(dependant, attribute: str) -> Iterator[Any]:
    yield from getattr(dependant, attribute)
    for sub in dependant.dependencies:
        yield from _walk(sub, attribute)


def _depends_on(dependant, call) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _permission(dependant) -> str | None:
    for d in dependant.dependencies:
        found = getattr(d.call, "permission", None) or _permission(d)
        if found:
            return found
    return None


def _api_routes(items) -> Iterator[APIRoute]:
    for route in items:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI's include_router wrapper
            yield from _api_routes(route.original_router.routes)
        elif hasattr(route, "routes"):
            yield from _api_routes(route.routes)


def endpoints(app) -> list[Endpoint]:
    """Every (method, path) the app serves, HEAD and OPTIONS aside."""
    return [
        Endpoint(method, route.path, route)
        for route in _api_routes(app.routes)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"})
    ]


def test_every_route_parameter_is_classified(app) -> None:
    found = endpoints(app)
    unclassified = []
    for e in found:
        for name in e.path_params():
            if name not in ID_PARAMS and name not in VALUE_PARAMS:
                unclassified.append((e.key, "path", name))
            if name in VALUE_PARAMS and not e.path_params()[name] and name not in FREE_SAMPLES:
                unclassified.append((e.key, "free path parameter without a sample", name))
        for name in e.query_params():
            if any(w in name.lower() for w in ID_LIKE) and name not in ID_QUERY.get(e.key, {}):
                unclassified.append((e.key, "query", name))
        if e.permission not in ADMIN_PERMISSIONS:
            for param in e.body_params():
                fields = getattr(param.field_info.annotation, "model_fields", {param.name: None})
                unclassified += [(e.key, "body", f) for f in fields if f.endswith("_id")]
    with_ids = [e for e in found if e.id_params()]
    changing = [e for e in found if e.state_changing]
    print(
        f"route inventory: {len(found)} routes, {len(with_ids)} with id parameters, "
        f"{len(changing)} state-changing, {len(unclassified)} unclassified"
    )
    assert unclassified == []
    assert len(found) >= 50 and len(with_ids) >= 14 and len(changing) >= 17
