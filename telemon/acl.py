"""Who may do what on the MQTT broker: contract v1's access rules, as one table.

``RULES`` is the single source. The shipped Mosquitto ACL, ``deploy/mosquitto/acl``, is its
rendering (``python -m telemon.acl > deploy/mosquitto/acl``; a test checks the file is exactly
that), and the demo's embedded broker (``console/embedded.py``) checks the same table with the
meaning Mosquitto gives an acl_file:

* whatever no rule grants is denied;
* a rule for ``GATEWAYS`` is a Mosquitto ``pattern`` line: it applies to every user, with the
  gateway level of its topic replaced by the user's own name (``%u``). The MQTT username of a
  gateway IS its gateway id, so each gateway reaches only its own topics;
* a rule for a named user (``ingest``, ``server``) applies to that user alone, on every gateway
  (``+``);
* ``read`` covers subscribing and receiving, ``write`` publishing (a last will included).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from telemon.topics import ROOT, Channel, is_gateway_id

INGEST_USER = "ingest"
SERVER_USER = "server"
# A gateway with one of these names would also hold its rights (pattern rules apply to every
# user), so no gateway may be called so (deploy/mosquitto/make-passwd.sh refuses them too).
SERVICE_USERS = (INGEST_USER, SERVER_USER)
GATEWAYS = None  # the ``who`` of a rule every gateway has on its own id
OWN_ID = "%u"  # Mosquitto's substitution for the authenticated username
EVERY_GATEWAY = "+"


class Access(StrEnum):
    READ = "read"  # subscribe, receive
    WRITE = "write"  # publish


@dataclass(frozen=True, slots=True)
class Rule:
    who: str | None  # a username, or GATEWAYS
    access: Access
    channel: Channel
    why: str  # rendered as the comment above the rule's group in deploy/mosquitto/acl

    @property
    def topic(self) -> str:
        """The topic filter as the ACL file writes it."""
        gateway = OWN_ID if self.who is GATEWAYS else EVERY_GATEWAY
        return f"{ROOT}/gw/{gateway}/{self.channel.value}"


_GATEWAYS_WHY = """\
Home gateways. The MQTT username of a gateway IS its gateway id (deploy/mosquitto/make-passwd.sh).
%u is the authenticated username, never the client id (%c): a client id is chosen by the client
and grants nothing. Pattern lines apply to every user, which is why make-passwd.sh refuses the
server users' names (ingest, server) as gateway ids."""
_INGEST_WHY = (
    "The ingest service reads what every gateway sends (also as $share/ingest/telemon/v1/gw/+/...)."
)
_SERVER_WHY = "The alerts and dashboard services publish each gateway's retained configuration."

RULES: tuple[Rule, ...] = (
    Rule(GATEWAYS, Access.WRITE, Channel.OBS, _GATEWAYS_WHY),
    Rule(GATEWAYS, Access.WRITE, Channel.STATUS, _GATEWAYS_WHY),
    Rule(GATEWAYS, Access.WRITE, Channel.DEVICES, _GATEWAYS_WHY),
    Rule(GATEWAYS, Access.READ, Channel.CONFIG, _GATEWAYS_WHY),
    Rule(INGEST_USER, Access.READ, Channel.OBS, _INGEST_WHY),
    Rule(INGEST_USER, Access.READ, Channel.STATUS, _INGEST_WHY),
    Rule(INGEST_USER, Access.READ, Channel.DEVICES, _INGEST_WHY),
    Rule(SERVER_USER, Access.WRITE, Channel.CONFIG, _SERVER_WHY),
)


def gateway_id_problem(gateway_id: str) -> str | None:
    """Why ``gateway_id`` cannot be a gateway's MQTT username, or None if it can."""
    if not is_gateway_id(gateway_id) or ":" in gateway_id:
        # ':' separates user and hash in Mosquitto's password file.
        return f"invalid gateway id {gateway_id!r}"
    if gateway_id in SERVICE_USERS:
        return f"{gateway_id!r} is a server user, not a gateway id"
    return None


def allowed(username: str | None, access: Access, topic_filter: str) -> bool:
    """May ``username`` do ``access`` on every topic ``topic_filter`` can name?

    For a publish or a delivery ``topic_filter`` is a plain topic; for a subscription it is the
    filter subscribed to, granted only if every topic it matches is readable (so ``#`` is not).
    """
    if username is None:
        return False
    wanted = _without_share_group(topic_filter)
    return any(
        rule.access is access and _covers(granted, wanted)
        for rule in RULES
        if (granted := _granted_topic(rule, username)) is not None
    )


def _granted_topic(rule: Rule, username: str) -> str | None:
    if rule.who is GATEWAYS:
        # Mosquitto's %u: a username that is no gateway id (a '/', '+' or '#' in it) gets nothing.
        return rule.topic.replace(OWN_ID, username) if is_gateway_id(username) else None
    return rule.topic if rule.who == username else None


def _without_share_group(topic_filter: str) -> str:
    """``$share/group/filter`` is checked as ``filter``, as Mosquitto does."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2] if topic_filter.count("/") >= 2 else ""
    return topic_filter


def _covers(outer: str, inner: str) -> bool:
    """Does filter ``outer`` match every topic that filter (or topic) ``inner`` matches?"""
    outer_levels, inner_levels = outer.split("/"), inner.split("/")
    for index, level in enumerate(outer_levels):
        if level == "#":
            return True
        if index >= len(inner_levels) or inner_levels[index] == "#":
            return False
        if level != "+" and inner_levels[index] != level:
            return False
    return len(inner_levels) == len(outer_levels)


_HEADER = """\
# Mosquitto ACL for telemon MQTT contract v1 (telemon/topics.py). Checked by
# tests/deploy/test_mosquitto_acl.py against the real broker.
#
# Rendered from the table in telemon/acl.py, which the demo's embedded broker enforces too: edit
# the table, then run `python -m telemon.acl > deploy/mosquitto/acl` (tests/deploy/test_acl_file.py
# fails while this file differs from the rendering).
#
# Mosquitto denies whatever no line grants. "read" covers subscribing and receiving, "write"
# publishing. Delivery is checked against the topic of each message, so a subscription through a
# shared group ($share/ingest/...) is governed by the same plain-topic lines.
"""


def render_mosquitto_acl() -> str:
    """``deploy/mosquitto/acl``: pattern lines first (they must precede every ``user`` line)."""
    sections = [_HEADER]
    patterns = [rule for rule in RULES if rule.who is GATEWAYS]
    users = list(dict.fromkeys(rule.who for rule in RULES if rule.who is not GATEWAYS))
    sections.append(
        _comment(patterns[0].why)
        + "".join(f"pattern {rule.access.value} {rule.topic}\n" for rule in patterns)
    )
    for user in users:
        rules = [rule for rule in RULES if rule.who == user]
        sections.append(
            _comment(rules[0].why)
            + f"user {user}\n"
            + "".join(f"topic {rule.access.value} {rule.topic}\n" for rule in rules)
        )
    return "\n".join(sections)


def _comment(text: str) -> str:
    return "".join(f"# {line}\n" for line in text.splitlines())


if __name__ == "__main__":
    print(render_mosquitto_acl(), end="")
