"""The embedded broker's gatekeeping: logins, the ACL of telemon/acl.py, and amqtt's gaps closed.

amqtt (0.12) loads authentication and topic plugins by dotted name and hands each the dataclass
``Config`` given in the broker's configuration; :class:`LoginPlugin` and :class:`AclPlugin` are
ours. Three things amqtt does are not governed by any plugin, so :class:`GuardedBroker` changes
them (tests/test_embedded_broker.py replays each):

* it deletes, takes over or rewrites the session of a CONNECT's client id *before* it
  authenticates, so a refused anonymous client could still drop another client's subscriptions
  or disconnect it: here nothing is touched until the client has logged in, and a client id
  held by another user is refused;
* on every connect it sends the client the retained messages matching *any* client's
  subscriptions (its own or not), and on a subscription every retained message that matches,
  without the receive check it applies to live messages: here only the client's own
  subscriptions count, and every retained or queued message passes the read rule;
* it never checks a last will against the ACL: here a will the user may not publish refuses the
  connection, as Mosquitto does.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass, field

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from amqtt.utils import gen_client_id

from telemon.acl import Access, allowed

# amqtt's actions, in the ACL's terms: a subscription is checked as a filter, the others as topics.
ACCESS_BY_ACTION = {
    Action.SUBSCRIBE: Access.READ,
    Action.RECEIVE: Access.READ,
    Action.PUBLISH: Access.WRITE,
}


class LoginPlugin(BaseAuthPlugin):
    """Username and password from ``Config.logins``; no anonymous client; an allowed will."""

    @dataclass
    class Config:
        logins: dict[str, str] = field(default_factory=dict)

    async def authenticate(self, *, session: Session) -> bool:
        password = self.config.logins.get(session.username or "")
        given = session.password or ""
        if password is None or not hmac.compare_digest(password.encode(), given.encode()):
            return False
        return not session.will_flag or allowed(
            session.username, Access.WRITE, session.will_topic or ""
        )


class AclPlugin(BaseTopicPlugin):
    """The rules of telemon/acl.py on every subscription, publish and delivery."""

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        access = ACCESS_BY_ACTION.get(action) if action is not None else None
        if session is None or topic is None or access is None:
            return False
        return allowed(session.username, access, topic)


class GuardedBroker(Broker):
    """amqtt's broker with the gaps of the module docstring closed."""

    async def _initialize_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, session = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except MQTTError:
            await writer.close()
            raise
        except NoDataError as exc:
            raise AMQTTError(exc) from exc
        # The listener argument is unused by amqtt 0.12's _authenticate.
        if not await self._authenticate(session, None):
            await _refuse(writer, f"login refused for {session.username!r}")
        existing = self._sessions.get(session.client_id) if session.client_id else None
        if existing is not None and existing[0].username != session.username:
            await _refuse(writer, f"client id {session.client_id!r} belongs to another user")
        # From here on as amqtt does it (amqtt.broker.Broker._initialize_client_session).
        if session.clean_session:
            if session.client_id:
                await self._delete_session(session.client_id)
            else:
                session.client_id = gen_client_id()
            session.parent = 0
        elif existing is not None:
            kept = existing[0]
            kept.will_flag = session.will_flag
            kept.will_message = session.will_message
            kept.will_topic = session.will_topic
            kept.will_qos = session.will_qos
            kept.keep_alive = session.keep_alive
            kept.password = session.password
            session = kept
            session.parent = 1
        else:
            session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        topic_filter, qos = subscription
        if not any(
            s.client_id == session.client_id for s, _ in self._subscriptions.get(topic_filter, [])
        ):
            return  # amqtt calls this on connect for every client's subscriptions
        handler = self._get_handler(session)
        if handler is None:
            return
        sends = [
            asyncio.ensure_future(
                handler.mqtt_publish(
                    retained.topic, retained.data, min(qos, retained.qos or qos), retain=True
                )
            )
            for topic, retained in list(self._retained_messages.items())
            if self._matches(topic, topic_filter) and await self._may_receive(session, topic)
        ]
        if sends:
            await asyncio.wait(sends)

    async def _publish_session_retained_messages(self, session: Session) -> None:
        handler = self._get_handler(session)
        sends = []
        while handler is not None and not session.retained_messages.empty():
            queued = session.retained_messages.get_nowait()
            if await self._may_receive(session, queued.topic):
                sends.append(
                    asyncio.ensure_future(
                        handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=True)
                    )
                )
        if sends:
            await asyncio.wait(sends)

    async def _may_receive(self, session: Session, topic: str) -> bool:
        allowed: bool = await self._topic_filtering(session, topic, Action.RECEIVE)
        return allowed


async def _refuse(writer: WriterAdapter, why: str) -> None:
    """CONNACK 'not authorised', close, and end this connection's handling (amqtt logs ``why``)."""
    await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
    await writer.close()
    raise MQTTError(why)
